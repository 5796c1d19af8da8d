"""The pre-merge check: rules evaluated on an analysis, findings with stable fingerprints,
base-vs-head and baseline filtering, and the one versioned JSON report outputs derive from.

A native-only feature is one finding at its root (check/roots.py), with the flagged
functions below it listed as its callees; an allowance of the root covers them."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from entrycheck import safeio
from entrycheck.analysis import Analysis
from entrycheck.binary.dwarf import DwarfIndex
from entrycheck.binary.functions import normalise_name
from entrycheck.check import SEVERITIES
from entrycheck.check.roots import Root, group
from entrycheck.check.rules import Matcher, Rule
from entrycheck.errors import EntrycheckError
from entrycheck.model import EntryGraph
from entrycheck.paths import Divergence, Point, boot_path, chain, diverge, whole_diff

FORMAT = "entrycheck-check/1"
BASELINE_FORMAT = "entrycheck-baseline/2"
BASELINE_FORMATS = ("entrycheck-baseline/1", BASELINE_FORMAT)  # 1: without callees


@dataclass(frozen=True)
class Finding:
    """One rule violation: which entry misses (or has) what, and why the reference has it."""

    rule: str
    severity: str
    entry: str
    symbol: str
    message: str
    chain: tuple[str, ...]
    fingerprint: str
    reached_by: str | None = None
    file: str | None = None
    line: int | None = None
    suppressed: str | None = None
    callees: tuple[str, ...] = ()  # the flagged functions the root leads to (normalised)
    new_callees: tuple[str, ...] = ()  # callees the base (or baseline) finding lacked

    def as_json(self) -> dict:
        out = asdict(self)
        out["chain"] = list(self.chain)
        out["callees"] = list(self.callees)
        out["new_callees"] = list(self.new_callees)
        return out


def fingerprint(rule: str, entry: str, symbol: str) -> str:
    """Stable id: rule, entry and normalised symbol, never addresses."""
    key = f"{rule}\0{entry}\0{normalise_name(symbol)}"
    return hashlib.sha256(key.encode()).hexdigest()[:20]


class _Context:
    """Per-analysis facts the matchers need: boot paths and DWARF inlines. DWARF that
    cannot be read is dropped with a warning: the effect-level matchers still work."""

    def __init__(self, analysis: Analysis, cache_dir: Path | None = None):
        self.analysis = analysis
        self.knowledge = analysis.knowledge
        self.nodes = {e.name: {n.name: n for n in analysis.graphs[e.name].nodes.values()}
                      for e in analysis.entries}
        self.paths = {e.name: {analysis.graphs[e.name].name(a)
                               for a in boot_path(analysis.graphs[e.name], analysis.rules)}
                      for e in analysis.entries}
        self.dwarf = DwarfIndex(Path(analysis.image), cache_dir) if analysis.has_dwarf else None
        self.dwarf_warning: str | None = None
        self._inlined: dict[str, tuple[str, ...]] | None = None
        self._divergences: dict[str, Divergence] = {}
        self.covered: dict[str, set[int]] = {}  # entry -> functions feature findings hold

    def divergence(self, entry: str) -> Divergence:
        """How the entry's boot path relates to the reference's (computed once)."""
        if entry not in self._divergences:
            graphs = self.analysis.graphs
            self._divergences[entry] = diverge(graphs[entry], graphs[self.analysis.reference],
                                               self.analysis.rules)
        return self._divergences[entry]

    def native_only(self, entry: str) -> set[int]:
        """Init functions the reference runs before convergence and the entry never runs."""
        ref = self.analysis.graphs[self.analysis.reference]
        return {a for a in self.divergence(entry).reference_only if ref.nodes[a].init}

    def allowed(self, reasons: dict[str, str]) -> dict[int, str]:
        """Function addresses of an allow list, by normalised name (`__pi_`, `.constprop.N`,
        `.isra.N`, `.part.N`, `.cold` stripped on both sides), with their reasons."""
        out: dict[int, str] = {}
        for name, reason in reasons.items():
            for address in sorted(self.analysis.names.matching(frozenset({name}))):
                out.setdefault(address, reason)
        return out

    def _unusable(self, exc: EntrycheckError) -> None:
        self.dwarf, self.dwarf_warning = None, f"DWARF unusable, checked without it: {exc}"

    def inlined(self, function: str) -> tuple[str, ...]:
        if self._inlined is None:
            wanted = {}
            for name, path in self.paths.items():
                nodes = self.nodes[name]
                wanted.update({n: nodes[n].address for n in path if nodes[n].init})
            found = {}
            if self.dwarf is not None:
                try:
                    found = self.dwarf.inlined_in(wanted)
                except EntrycheckError as exc:
                    self._unusable(exc)
            self._inlined = {n: tuple(i.name for i in found.get(n, ())) for n in wanted}
        return self._inlined.get(function, ())

    def location(self, function: str | None) -> tuple[str | None, int | None]:
        """Declaration file and line of a function on some entry's graph (DWARF)."""
        if self.dwarf is None or function is None:
            return None, None
        for nodes in self.nodes.values():
            if function in nodes:
                try:
                    loc = self.dwarf.locations({function: nodes[function].address})
                except EntrycheckError as exc:
                    self._unusable(exc)
                    return None, None
                if function in loc:
                    return loc[function].file, loc[function].line
                break
        return None, None

    def matches(self, entry: str, matcher: Matcher) -> list[tuple[str, str]]:
        """(function on the entry's boot path, feature symbol) pairs the matcher selects."""
        nodes = self.nodes[entry]
        out = []
        for name in sorted(self.paths[entry]):
            node = nodes[name]
            symbol = normalise_name(name.split("@", 1)[0])
            if matcher.function and not matcher.function.fullmatch(symbol):
                continue
            if matcher.data and not any(matcher.data.fullmatch(d) for d in node.refs):
                continue
            if matcher.instruction and not any(
                    matcher.instruction.search(i) for i in node.privileged):
                continue
            if matcher.inlined:
                hits = [i for i in self.inlined(name) if matcher.inlined.fullmatch(i)]
                if not hits:
                    continue
                symbol = hits[0]
            out.append((name, symbol))
        return out


@dataclass(frozen=True)
class Evaluation:
    """The findings of one analysis, and why DWARF was not used when it could not be."""

    findings: list[Finding]
    dwarf_warning: str | None = None
    source_roots: tuple[str, ...] = ()  # where DWARF's file names start


def evaluate(analysis: Analysis, rules: list[Rule]) -> list[Finding]:
    """Every finding of every rule on this analysis (suppressed ones included, marked)."""
    return run(analysis, rules).findings


def run(analysis: Analysis, rules: list[Rule], cache_dir: Path | None = None) -> Evaluation:
    """evaluate(), with the DWARF warning; `cache_dir` holds the DWARF index."""
    ctx = _Context(analysis, cache_dir)
    findings: list[Finding] = []
    for rule in sorted(rules, key=lambda r: r.generic is not None):
        if rule.bits not in (None, analysis.bits):
            continue
        if rule.generic:
            covered = {(f.entry, f.symbol) for f in findings}
            found = GENERIC_KINDS[rule.generic](ctx, rule)
            findings += [f for f in found if (f.entry, f.symbol) not in covered]
        else:
            findings += _feature(ctx, rule)
    ordered = sorted(findings, key=lambda f: (SEVERITIES.index(f.severity), f.rule, f.entry,
                                              f.symbol))
    roots = tuple(ctx.dwarf.source_roots()) if ctx.dwarf is not None else ()
    return Evaluation(ordered, ctx.dwarf_warning, roots)


def _feature(ctx: _Context, rule: Rule) -> list[Finding]:
    present = [e.name for e in ctx.analysis.entries]
    reference = ctx.analysis.reference
    hits = {e: [h for m in rule.matchers for h in ctx.matches(e, m)] for e in present}
    out = []
    if rule.requirement == "not_reached_by":
        for entry in (e for e in rule.entries if e in present):
            for function, symbol in hits[entry][:1]:
                out.append(_finding(ctx, rule, entry, symbol, entry, function))
        return out
    if rule.requirement == "native_only":
        targets = [e for e in (rule.entries or present) if e in present and e != reference]
        return [f for entry in targets for f in _lacking(ctx, rule, entry, hits)]
    for entry in (e for e in rule.entries if e in present):  # reached_by_all
        if hits[entry]:
            continue
        source = next((e for e in (reference, *present) if hits.get(e)), None)
        if source is None:
            out.append(_finding(ctx, rule, entry, _pattern(rule), None, None))
        else:
            function, symbol = hits[source][0]
            out.append(_finding(ctx, rule, entry, symbol, source, function))
    return out


def _lacking(ctx: _Context, rule: Rule, entry: str,
             hits: dict[str, list[tuple[str, str]]]) -> list[Finding]:
    """native_only: a finding per root among the features the reference reaches and the
    entry does not; the native-only init code below a root is its callees."""
    reference = ctx.analysis.reference
    have = {symbol for _, symbol in hits[entry]}
    lacking: dict[int, tuple[str, str]] = {}
    for function, symbol in hits.get(reference, []):
        if symbol not in have:
            have.add(symbol)
            lacking.setdefault(ctx.nodes[reference][function].address, (symbol, function))
    if not lacking:
        return []
    below = ctx.native_only(entry) | set(lacking)
    out = []
    for root in group(ctx.analysis.graphs[reference], below, heads=lacking):
        symbol, function = lacking[root.address]
        ctx.covered.setdefault(entry, set()).update({root.address, *root.members})
        out.append(_finding(ctx, rule, entry, symbol, reference, function,
                            callees=_callees(ctx, root)))
    return out


def _generic(ctx: _Context, rule: Rule) -> list[Finding]:
    """native_only_init: init code the reference runs before convergence and an entry
    never runs, one finding per root. `allow_functions` (the reference path's own code)
    are allowed as themselves and lead to nothing; an `allow_roots` root of the entry
    covers its callees; what a feature rule found (and its callees) is not found again."""
    analysis, reference = ctx.analysis, ctx.analysis.reference
    if reference not in analysis.graphs:
        return []
    ref_graph = analysis.graphs[reference]
    itself = ctx.allowed(rule.allow_functions)
    out = []
    for entry in (e.name for e in analysis.entries if e.name != reference):
        flagged = ctx.native_only(entry) - ctx.covered.get(entry, set())
        for address in sorted(flagged & itself.keys()):
            name = ref_graph.name(address)
            out.append(_finding(ctx, rule, entry, name, reference, name, itself[address]))
        roots = ctx.allowed(rule.allow_roots.get(entry, {}))
        for root in group(ref_graph, flagged - itself.keys()):
            name = ref_graph.name(root.address)
            out.append(_finding(ctx, rule, entry, name, reference, name,
                                roots.get(root.address), _callees(ctx, root)))
    return out


def _generic_boot(ctx: _Context, rule: Rule) -> list[Finding]:
    """native_only_boot: init code the reference reaches over the whole boot, past what
    its path runs before the paths converge, that an entry never reaches: one finding per
    root under each point where the graphs part (a hook slot, a boot fact, an edge only
    the reference's graph has). A boot fact's cut is the kernel's own choice (allowed,
    with the fact); `allow_points` allows a hook slot the entry sets to its own target,
    `allow_roots` a root. Needs the whole-boot graphs (a complete analysis)."""
    analysis, reference = ctx.analysis, ctx.analysis.reference
    if reference not in analysis.graphs or not analysis.complete:
        return []
    ref_graph = analysis.graphs[reference]
    out = []
    for entry in (e.name for e in analysis.entries if e.name != reference):
        diff = whole_diff(analysis.graphs[entry], ref_graph, analysis.rules)
        before = set(ctx.divergence(entry).reference_only) | ctx.covered.get(entry, set())
        by_point: dict[Point, set[int]] = {}
        for address, point in diff.reference_only.items():
            if address not in before and ref_graph.brief(address)[2]:  # init code
                by_point.setdefault(point, set()).add(address)
        slots = rule.allow_points.get(entry, {})
        roots = ctx.allowed(rule.allow_roots.get(entry, {}))
        for point, flagged in sorted(by_point.items(), key=lambda p: (p[0].kind, p[0].name)):
            for root in group(ref_graph, flagged):
                name = ref_graph.name(root.address)
                allowed = roots.get(root.address)
                if point.kind == "fact":
                    allowed = f"the kernel leaves it out for {entry} itself: {point.name}"
                elif point.kind == "hook":
                    allowed = slots.get(point.name, allowed)
                out.append(_finding(ctx, rule, entry, name, reference, name, allowed,
                                    _callees(ctx, root), _where(point)))
    return out


GENERIC_KINDS = {"native_only_init": _generic, "native_only_boot": _generic_boot}


def _where(point: Point) -> str:
    """A divergence point for a message."""
    if point.kind == "hook":
        return f"through the hook {point.name}"
    if point.kind == "entry":
        return "on its own path"
    return f"through {point.name}"


def _callees(ctx: _Context, root: Root) -> tuple[str, ...]:
    graph = ctx.analysis.graphs[ctx.analysis.reference]
    names = {normalise_name(graph.name(a).split("@", 1)[0]) for a in root.members}
    return tuple(sorted(names - {normalise_name(graph.name(root.address).split("@", 1)[0])}))


def _finding(ctx: _Context, rule: Rule, entry: str, symbol: str, source: str | None,
             function: str | None, suppressed: str | None = None,
             callees: tuple[str, ...] = (), point: str = "") -> Finding:
    links: tuple[str, ...] = ()
    if source is not None and function is not None:
        graph: EntryGraph = ctx.analysis.graphs[source]
        links = tuple(step.function for step in
                      chain(graph, ctx.nodes[source][function].address, ctx.analysis.rules))
    message = rule.message.format(entry=entry, symbol=symbol, function=function or symbol,
                                  reference=source or ctx.analysis.reference, point=point)
    location = ctx.location(function)
    return Finding(rule.id, rule.severity, entry, normalise_name(symbol), message, links,
                   fingerprint(rule.id, entry, symbol), source if links else None, *location,
                   suppressed or rule.allow.get(entry), callees)


def _pattern(rule: Rule) -> str:
    m = rule.matchers[0]
    pattern = m.function or m.inlined or m.data or m.instruction
    return pattern.pattern if pattern is not None else rule.id


MAX_BASELINE = 16 << 20  # bytes


@dataclass(frozen=True)
class Known:
    """A finding of the base image or of a baseline: the callees it had (None: not
    recorded, as in a baseline of format 1), and whether a rule allowed it."""

    callees: frozenset[str] | None = None
    suppressed: bool = False


def known_from(findings: list[Finding]) -> dict[str, Known]:
    """The base image's findings (allowed ones too) by fingerprint."""
    return {f.fingerprint: Known(frozenset(f.callees), bool(f.suppressed)) for f in findings}


def merge_known(known: dict[str, Known], more: dict[str, Known]) -> dict[str, Known]:
    """What two sources (baseline, base image) know together: the callees either had
    (an unrecorded set stays unrecorded: it covers all), allowed only where both allowed."""
    out = dict(known)
    for fp, k in more.items():
        was = out.get(fp)
        if was is not None:
            callees = None if was.callees is None or k.callees is None else \
                was.callees | k.callees
            k = Known(callees, was.suppressed and k.suppressed)
        out[fp] = k
    return out


def read_baseline(path: Path) -> dict[str, Known]:
    """The findings of an entrycheck-baseline file (--write-baseline writes one), by
    fingerprint."""
    data = safeio.read_json(path, "baseline", MAX_BASELINE)
    where = safeio.shown(path)
    if not isinstance(data, dict) or data.get("format") not in BASELINE_FORMATS:
        raise EntrycheckError(f"{where}: not an {BASELINE_FORMAT} file (write one with "
                              "check --write-baseline)")
    findings = data.get("findings")
    if not isinstance(findings, list):
        raise EntrycheckError(f"{where}: bad baseline: `findings` must be a list")
    out = {}
    for i, item in enumerate(findings):
        fp = item.get("fingerprint") if isinstance(item, dict) else None
        if not isinstance(fp, str) or not fp:
            raise EntrycheckError(f"{where}: bad baseline: finding {i} has no fingerprint "
                                  "string")
        callees = item.get("callees")
        if callees is not None and not (isinstance(callees, list)
                                        and all(isinstance(c, str) for c in callees)):
            raise EntrycheckError(f"{where}: bad baseline: finding {i}'s callees must be a "
                                  "list of names")
        out[fp] = Known(None if callees is None else frozenset(callees),
                        bool(item.get("suppressed")))
    return out


def baseline_json(findings: list[Finding]) -> dict:
    """The findings, allowed ones marked, as an entrycheck-baseline document."""
    return {"format": BASELINE_FORMAT,
            "findings": [{"fingerprint": f.fingerprint, "rule": f.rule, "entry": f.entry,
                          "symbol": f.symbol, "callees": list(f.callees),
                          **({"suppressed": True} if f.suppressed else {})}
                         for f in findings]}


def compare(findings: list[Finding], known: dict[str, Known]) -> list[Finding]:
    """The findings as the check reports them against what is known (base, baseline): a
    known finding is active again only for callees it did not have and that are not known
    roots themselves, and then even where a rule allows it (an allowance covers what its
    root led to at the base, not a new call added below it)."""
    out = []
    for f in findings:
        was = known.get(f.fingerprint)
        new = () if was is None or was.callees is None else \
            tuple(sorted(c for c in set(f.callees) - was.callees
                         if fingerprint(f.rule, f.entry, c) not in known))
        if new:
            f = replace(f, new_callees=new, suppressed=None)
        out.append(f)
    return out


def is_known(f: Finding, known: dict[str, Known]) -> bool:
    """Whether an active finding was there before as it is now: known, with no new
    callees, and not only allowed then (a finding whose allowance was removed is new)."""
    was = known.get(f.fingerprint)
    return was is not None and not f.new_callees and (not was.suppressed or bool(f.suppressed))


def report(analysis: Analysis, rules: list[Rule], findings: list[Finding], *,
           base: Analysis | None, known: dict[str, Known], fail_on: str,
           warnings: list[str] = (), source_roots: list[str] = (),
           rules_url: str | None = None) -> dict:
    """The versioned JSON report every output format is derived from; `warnings`: what
    the check could not use (DWARF that does not parse); `source_roots`: where source
    file names start (SARIF makes them relative); `rules_url`: rules/README.md online."""
    findings = compare(findings, known)
    active = [f for f in findings if not f.suppressed and not is_known(f, known)]
    threshold = SEVERITIES.index(fail_on)
    failing = [f for f in active if SEVERITIES.index(f.severity) <= threshold]
    summary = {s: sum(1 for f in active if f.severity == s) for s in SEVERITIES}
    summary["suppressed"] = sum(1 for f in findings if f.suppressed)
    summary["known"] = sum(1 for f in findings if not f.suppressed and is_known(f, known))
    return {
        "format": FORMAT,
        "image": analysis.image,
        "build_id": analysis.build_id,
        "base": None if base is None else {"image": base.image, "build_id": base.build_id},
        "entries": [e.name for e in analysis.entries],
        "inlined_visible": analysis.has_dwarf and not warnings,
        "warnings": list(warnings),
        "source_roots": list(source_roots),
        "rules_url": rules_url,
        "rules": [r.as_json() for r in rules],
        "findings": [f.as_json() for f in active],
        "suppressed": [f.as_json() for f in findings if f.suppressed],
        "summary": summary,
        "fail_on": fail_on,
        "exit_code": 1 if failing else 0,
    }
