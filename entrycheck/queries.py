"""The CLI's questions answered as JSON-ready dicts: entries, reach, skip, why, validate."""

from __future__ import annotations

from collections import Counter
from itertools import pairwise
from pathlib import Path

from entrycheck.analysis import Analysis
from entrycheck.binary.bzimage import XLF_KERNEL_64, BzImage
from entrycheck.errors import EntrycheckError, NotReached
from entrycheck.model import EDGE_STYLES, KIND_CODES, Edge, EdgeKind, EntryGraph
from entrycheck.paths import (
    Step,
    boot_path,
    chain,
    diverge,
    hook_table,
    normal_flow,
    whole_diff,
)
from entrycheck.trace.mapping import TraceResult

SCOPES = ("init", "early", "all")

FORMAT = "entrycheck-query/1"


def _header(analysis: Analysis, command: str) -> dict:
    return {"format": FORMAT, "command": command, "image": analysis.image,
            "build_id": analysis.build_id, "cached": analysis.cached}


def _functions(graph: EntryGraph, addresses: set[int]) -> list[dict]:
    """The functions as JSON, by name then address."""
    return [{"name": name, "address": f"{a:#x}", "section": section, "init": init}
            for name, a, section, init in graph.briefs(addresses)]


def _function(graph: EntryGraph, address: int) -> dict:
    name, section, init = graph.brief(address)
    return {"name": name, "address": f"{address:#x}", "section": section, "init": init}


def entries(analysis: Analysis) -> dict:
    out = _header(analysis, "entries")
    out["bits"] = analysis.bits
    out["entries"] = [e.as_json() for e in analysis.entries]
    out["special_sections"] = analysis.special
    return out


def in_scope(analysis: Analysis, graph: EntryGraph, scope: str) -> set[int]:
    """`all`: everything reached; `early`: the boot path (up to start_kernel);
    `init`: init code on the boot path (.init.text, head code)."""
    if scope == "all":
        if not analysis.complete:
            raise ValueError("scope `all` needs a complete analysis (analyse(complete=True))")
        return set(graph.nodes)
    early = boot_path(graph, analysis.rules)
    if scope == "early":
        return early
    return {a for a in early if graph.nodes[a].init}


def header_entries(bz: BzImage) -> dict:
    """The entries a bzImage's header gives (no symbols: addresses in the compressed code)."""
    out = {"format": FORMAT, "command": "entries", "image": str(bz.path), "build_id": None,
           "cached": False, "bits": 64 if bz.xlf(XLF_KERNEL_64) else 32,
           "header": bz.as_json()}
    out["entries"] = [{"name": name, "symbol": "-", "address": f"{addr:#x}", "mode": mode,
                       "found": ["header"], "about": "address in the compressed kernel"}
                      for name, (addr, mode) in bz.entry_addresses().items()]
    return out


def reach(analysis: Analysis, entry: str, scope: str) -> dict:
    graph = analysis.graph(entry)
    scoped = in_scope(analysis, graph, scope)
    out = _header(analysis, "reach")
    out.update({
        "entry": graph.entry,
        "scope": scope,
        "reached": _functions(graph, scoped),
        "total_reached": len(graph.nodes),
        "graph": "whole boot" if analysis.complete else "boot path",  # what total_reached counts
        "indirect": indirect_figures(graph, scoped),
        "resolvers": dict(sorted(graph.resolved.items())),
        "unresolved": [u.as_json(graph.name(u.function)) for u in graph.unresolved
                       if u.function in scoped],
        "unresolved_by_reason": dict(Counter(u.reason for u in graph.unresolved
                                             if u.function in scoped).most_common()),
        "special_sections": analysis.special,
    })
    return out


_INDIRECT = frozenset(k for k, style in EDGE_STYLES.items() if style.indirect)


def indirect_figures(graph: EntryGraph, functions: set[int]) -> dict:
    """Indirect transfers made by these functions: resolved (distinct caller-callee edges)
    and unresolved (sites)."""
    index, _, off, _, kind, _ = graph.adjacency()
    codes = [i for i, k in enumerate(KIND_CODES) if k in _INDIRECT]
    if len(functions) == len(index) and all(a in index for a in functions):  # every node
        counted = kind.tobytes()
        resolved = sum(counted.count(c.to_bytes(1, "little", signed=True)) for c in codes)
    else:
        wanted = set(codes)
        resolved = sum(1 for a in functions if a in index
                       for j in range(off[index[a]], off[index[a] + 1]) if kind[j] in wanted)
    unresolved = sum(1 for u in graph.unresolved if u.function in functions)
    return {"resolved": resolved, "unresolved": unresolved,
            "share_resolved": _share(resolved, unresolved)}


def skip(analysis: Analysis, entry: str, against: str, scope: str,
         with_faults: bool = False) -> dict:
    graph, reference = analysis.graph(entry), analysis.graph(against)
    div = diverge(graph, reference, analysis.rules)
    scope_on_path = "early" if scope == "all" else scope  # what skip lists is on the boot path
    ref_scope = in_scope(analysis, reference, scope_on_path)
    own_scope = in_scope(analysis, graph, scope_on_path)
    out = _header(analysis, "skip")
    out.update({
        "entry": graph.entry,
        "against": reference.entry,
        "scope": scope,
        "convergence": [graph.name(a) for a in div.convergence],
        "skipped": [
            {**_function(reference, a),
             "chain": [s.function for s in chain(reference, a, analysis.rules)]}
            for a in sorted(div.reference_only, key=reference.name) if a in ref_scope
        ],
        "entry_only": [
            _function(graph, a) for a in sorted(div.entry_only, key=graph.name)
            if a in own_scope
        ],
    })
    if analysis.complete:
        out["whole_boot"] = whole_boot(analysis, graph, reference, with_faults)
    return out


def whole_boot(analysis: Analysis, graph: EntryGraph, reference: EntryGraph,
               with_faults: bool) -> dict:
    """The whole-boot diff of two entries grouped by the point where their graphs part,
    and the hook table (slot -> targets per entry) of the slots that differ."""
    rules = analysis.rules
    diff = whole_diff(graph, reference, rules, with_faults)
    hooks = hook_table([graph, reference], [diff.entry_flow, diff.reference_flow])
    groups: dict = {}
    for side, g, found in (("reference_only", reference, diff.reference_only),
                           ("entry_only", graph, diff.entry_only)):
        for address, point in found.items():
            group = groups.setdefault(point, {"point": point.as_json(),
                                              "reference_only": [], "entry_only": []})
            group[side].append(g.name(address))
    for point, group in groups.items():
        if point.kind == "hook" and point.name in hooks:
            group["targets"] = {e: [_name_in(analysis, graph, reference, a) for a in t]
                                for e, t in hooks[point.name].items()}
        group["reference_only"].sort()
        group["entry_only"].sort()
    ordered = sorted(groups.values(), key=lambda g: (-len(g["reference_only"])
                                                     - len(g["entry_only"]),
                                                     g["point"]["name"]))
    return {
        "with_faults": with_faults,
        "reference_only": len(diff.reference_only),
        "entry_only": len(diff.entry_only),
        "groups": ordered,
        "hooks": [{"slot": slot, "targets": {e: [_name_in(analysis, graph, reference, a)
                                                  for a in t] for e, t in row.items()}}
                  for slot, row in hooks.items()],
    }


def _name_in(analysis: Analysis, graph: EntryGraph, reference: EntryGraph, address: int) -> str:
    for g in (graph, reference):
        if address in g.nodes:
            return g.name(address)
    return f"{address:#x}"


def dynamic_diff(skip_result: dict, entry_trace: TraceResult,
                 reference_trace: TraceResult) -> dict:
    """What two real boots ran differently before start_kernel, set beside the static
    diff of `skip`: which statically skipped functions really ran on the reference only."""
    ran_ref, ran_own = set(reference_trace.functions), set(entry_trace.functions)
    static = {f["name"] for f in skip_result["skipped"]}
    static_own = {f["name"] for f in skip_result["entry_only"]}
    ref_only = [n for n in reference_trace.functions if n not in ran_own]
    own_only = [n for n in entry_trace.functions if n not in ran_ref]
    return {
        "reference_trace": {"entry": reference_trace.entry, "functions": len(ran_ref)},
        "entry_trace": {"entry": entry_trace.entry, "functions": len(ran_own)},
        "reference_only": ref_only,
        "entry_only": own_only,
        "static_skipped_that_ran": sorted(static & ran_ref - ran_own),
        "static_skipped_not_run": sorted(static - ran_ref),
        "ran_differently_not_in_static": sorted(set(ref_only) - static),
        "entry_only_static_that_ran": sorted(static_own & ran_own),
    }


def why(analysis: Analysis, entry: str, function: str) -> dict:
    """A call chain from the entry to the function; where the entry does not reach it,
    the chains of the entries that do, each with where it parts from this entry."""
    graph = analysis.graph(entry)
    out = _header(analysis, "why")
    out.update({"entry": graph.entry, "function": function})
    if analysis.names.candidates(function):
        try:
            target = analysis.function_in(graph, function)
        except NotReached as missing:  # the CLI asks the complete analysis again
            others = _others(analysis, graph, missing.addresses) if analysis.complete else []
            out.update({"reached": False, "on_boot_path": False, "chain": [], "links": [],
                        "others": others})
            return out
        steps = chain(graph, target, analysis.rules)
        on_boot_path = target in boot_path(graph, analysis.rules)
    else:
        steps = _inlined_chain(analysis, graph, function)
        on_boot_path = True
    steps = _with_instructions(analysis, graph, steps)
    out.update({
        "reached": True,
        "on_boot_path": on_boot_path,
        "chain": [s.function for s in steps],
        "links": [s.as_json() for s in steps],
    })
    return out


def _others(analysis: Analysis, graph: EntryGraph, targets: list[int]) -> list[dict]:
    """For each other entry reaching one of `targets`: its chain, and where it parts from
    `graph`: the last function on a shortest route that `graph` also reaches, the steps
    after it (`graph` reaches none of them) and the boot fact that cut `graph`'s first
    of those edges, if one did."""
    out = []
    cuts = {(p.caller, p.callee): p.fact for p in graph.pruned}
    for name, other in sorted(analysis.graphs.items()):
        target = next((t for t in targets if t in other), None)
        if other is graph or target is None:
            continue
        row: dict = {"entry": name,
                     "chain": [s.function for s in chain(other, target, analysis.rules)]}
        route = _route_from_shared(other, graph, target)
        if route:
            shared, first = route[0], route[1]
            row["parts_at"] = other.name(shared)
            row["then"] = [other.name(a) for a in route[1:]]
            edge = other.succ[shared][first]
            row["edge"] = {"kind": str(edge.kind), **({"via": edge.via} if edge.via else {})}
            if (shared, first) in cuts:
                row["cut_by"] = cuts[shared, first]
        out.append(row)
    return out


def _route_from_shared(other: EntryGraph, graph: EntryGraph, target: int) -> list[int]:
    """A shortest route in `other` to `target` from a function `graph` also reaches,
    through functions it does not (empty when `other` reaches the target only through
    its own functions)."""
    index, addresses, offsets, dst, _, _ = other.adjacency()
    parent: dict[int, int] = {}
    frontier = [i for i, a in enumerate(addresses) if a in graph]
    seen = set(frontier)
    goal = index[target]
    while frontier and goal not in parent:
        step = []
        for i in frontier:
            for j in range(offsets[i], offsets[i + 1]):
                k = dst[j]
                if k not in seen and addresses[k] not in graph:
                    seen.add(k)
                    parent[k] = i
                    step.append(k)
        frontier = step
    if goal not in parent:
        return []
    route = [goal]
    while route[-1] in parent:
        route.append(parent[route[-1]])
    return [addresses[i] for i in reversed(route)]


def _with_instructions(analysis: Analysis, graph: EntryGraph, steps: list[Step]) -> list[Step]:
    """The chain with each edge's instruction filled in (the graph stores none)."""
    out = steps[:1]
    for before, step in pairwise(steps):
        edge = step.edge
        if edge is not None and not edge.text and before.address in graph.nodes \
                and graph.nodes[before.address].image == "vmlinux":
            mode = graph.nodes[before.address].mode
            edge = edge._replace(text=analysis.instruction_text(edge.site, mode))
        out.append(Step(step.address, step.function, edge))
    return out


def _inlined_chain(analysis: Analysis, graph: EntryGraph, helper: str) -> list[Step]:
    """A chain to a static inline helper: to the boot-path function it is inlined into
    (DWARF DW_TAG_inlined_subroutine), then an `inlined` step."""
    if not analysis.has_dwarf:
        raise EntrycheckError(f"no function named {helper!r} in {analysis.image}, and without "
                              "DWARF inlined helpers are invisible (use the vmlinux with "
                              "debug info)")
    from entrycheck.binary.dwarf import DwarfIndex

    path = boot_path(graph, analysis.rules)
    hosts = {graph.name(a): a for a in path}
    found = DwarfIndex(Path(analysis.image)).inlined_in(hosts)
    best: list[Step] | None = None
    for host, inlined in sorted(found.items()):
        hit = next((i for i in inlined if i.name == helper), None)
        if hit is None:
            continue
        steps = chain(graph, hosts[host], analysis.rules)
        where = f"{hit.call_file}:{hit.call_line}" if hit.call_file else "DWARF"
        edge = Edge(EdgeKind.INLINED, hit.low_pc or hosts[host], "dwarf", where)
        step = Step(hit.low_pc or hosts[host], helper, edge)
        if best is None or len(steps) + 1 < len(best):
            best = [*steps, step]
    if best is None:
        raise EntrycheckError(f"entry {graph.entry} does not reach {helper}, not even "
                              "inlined (or no function of that name)")
    return best


def _share(resolved: int, unresolved: int) -> float | None:
    total = resolved + unresolved
    return round(resolved / total, 4) if total else None


def validate(analysis: Analysis, trace: TraceResult, entry: str) -> dict:
    """Is every function a real boot ran inside the entry's static reach set? For each one
    that is not, the traced function that ran just before it and is in the set: where the
    static graph lost the path."""
    if trace.build_id and analysis.build_id and trace.build_id != analysis.build_id:
        raise EntrycheckError(f"the trace is of build {str(trace.build_id)[:64]}, "
                              f"{analysis.image[-80:]} is {analysis.build_id}: not the same "
                              "kernel")
    graph = analysis.graph(entry)
    if trace.entry != graph.entry:
        raise EntrycheckError(f"the trace is of a {str(trace.entry)[:40]} boot, not of "
                              f"{graph.entry}")
    missing, last_known = [], None
    unresolved: dict[int, list[str]] = {}
    for u in graph.unresolved:
        unresolved.setdefault(u.function, []).append(u.reason)
    for name in trace.functions:
        if trace.addresses.get(name) in graph.nodes:
            last_known = name
            continue
        lost = "a transfer from code the graph does not reach"
        before = trace.addresses.get(last_known) if last_known else None
        if before in unresolved:
            reasons = Counter(unresolved[before]).most_common(1)[0][0]
            lost = f"an indirect transfer of {last_known} ({len(unresolved[before])} " \
                   f"unresolved: {reasons})"
        missing.append({"function": name, "after": last_known, "lost": lost,
                        "physical": name in trace.physical})
    out = _header(analysis, "validate")
    traced = len(trace.functions)
    until_boot_end = trace.until in analysis.knowledge.names("boot_ends", analysis.kind)
    normal = boot_path(graph, analysis.rules) if until_boot_end else \
        normal_flow(graph, analysis.rules)
    out.update({
        "entry": graph.entry,
        "trace": {"entry": trace.entry, "until": trace.until, "build_id": trace.build_id,
                  "functions": traced},
        "same_build": trace.build_id == analysis.build_id,
        "inside": traced - len(missing),
        "share_inside": _share(traced - len(missing), len(missing)),
        "missing": missing,
        "precision": {"static_normal_flow": len(normal), "traced": traced,
                      "ratio": round(len(normal) / traced, 2) if traced else None,
                      "scope": "boot path" if until_boot_end else "whole boot"},
    })
    return out
