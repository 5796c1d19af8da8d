"""Rule files: YAML documents validated against the rule schema, with file:line errors.

A rule names a feature (matchers: a function, an inlined function, a referenced data
symbol, a privileged instruction) and a requirement on which entries reach it, or it is
the generic rule that flags init code only the reference entry runs. See rules/README.md.

Everything a rule says is checked when it is loaded, so a mistake is one line
`FILE:LINE: what is wrong` before any kernel is read: entry names against the catalogue
(and the user's --entry definitions), message placeholders against the fields a finding
fills in, regular expressions through RE2 (linear-time matching: no pattern can hang the
check). The YAML is read from a regular file of bounded size and composed under depth and
alias limits; nodes are walked, never constructed into Python objects.
"""

from __future__ import annotations

import re
import stat
import string
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import re2
import yaml

from entrycheck import safeio
from entrycheck.check import SEVERITIES
from entrycheck.errors import EntrycheckError, did_you_mean
from entrycheck.knowledge import x86

MATCHER_KEYS = ("function", "inlined", "data", "instruction")
REQUIREMENTS = ("reached_by_all", "not_reached_by", "native_only")
# native_only_init: before the paths converge; native_only_boot: over the whole boot
GENERIC = ("native_only_init", "native_only_boot")
FIELDS = ("entry", "symbol", "function", "reference", "point")  # what a message may name
_KEYS = {"id", "title", "severity", "message", "references", "match", "require", "allow",
         "generic", "allow_functions", "allow_roots", "allow_points", "bits", "help",
         "help_uri"}
_URI = re.compile(r"^https?://[^\s]+$")
_ID = re.compile(r"^[A-Za-z][\w.-]*$")
MAX_RULE_FILE = 1 << 20   # bytes
MAX_DEPTH = 20            # nested collections in one document
MAX_ALIASES = 100         # per file
MAX_PATTERN = 1000        # characters of one regular expression
MAX_LINE = 280            # characters of an error ("entrycheck: error: " makes it < 300)
RE2_MEMORY = 8 << 20      # bytes RE2 may use for one compiled pattern


class Pattern(Protocol):
    """A compiled RE2 pattern (the subset of re.Pattern the matchers use)."""

    pattern: str

    def fullmatch(self, text: str) -> Any: ...

    def search(self, text: str) -> Any: ...


@dataclass(frozen=True)
class Matcher:
    """A feature seen in one function: every given field must hold (regexes, full match)."""

    function: Pattern | None = None
    inlined: Pattern | None = None
    data: Pattern | None = None
    instruction: Pattern | None = None


@dataclass(frozen=True)
class Rule:
    """One validated rule."""

    id: str
    title: str
    severity: str
    message: str
    source: str
    references: tuple[str, ...] = ()
    matchers: tuple[Matcher, ...] = ()
    requirement: str | None = None
    entries: tuple[str, ...] = ()
    generic: str | None = None
    allow: dict[str, str] = field(default_factory=dict)
    allow_functions: dict[str, str] = field(default_factory=dict)  # itself, any entry
    allow_roots: dict[str, dict[str, str]] = field(default_factory=dict)  # entry -> root
    # native_only_boot: entry -> {hook slot the entry sets to its own target: reason}
    allow_points: dict[str, dict[str, str]] = field(default_factory=dict)
    bits: int | None = None  # applies only to kernels of this width
    help: str | None = None  # more than the title says (markdown)
    help_uri: str | None = None  # default: the rule's section of rules/README.md

    def as_json(self) -> dict:
        return {"id": self.id, "title": self.title, "severity": self.severity,
                "message": self.message, "references": list(self.references),
                "source": self.source, "help": self.help, "help_uri": self.help_uri,
                "allow": dict(self.allow), "allow_functions": dict(self.allow_functions),
                "allow_roots": {e: dict(r) for e, r in self.allow_roots.items()},
                "allow_points": {e: dict(r) for e, r in self.allow_points.items()}}


class _Invalid(Exception):
    def __init__(self, node: yaml.Node | yaml.Mark, message: str):
        super().__init__(message)
        mark = node if isinstance(node, yaml.Mark) else node.start_mark
        self.line = mark.line + 1


def entry_names(definitions: Iterable[str] = ()) -> frozenset[str]:
    """The entry names a rule may use: the catalogue's and those of the user's
    `NAME=SYMBOL[@32]` definitions (--entry / --define)."""
    names = {spec.name for spec in x86().entries}
    names |= {d.split("=", 1)[0] for d in definitions if "=" in d}
    return frozenset(names)


def load_rules(directory: Path, definitions: Iterable[str] = ()) -> list[Rule]:
    """Every rule of the `*.yaml` files in a folder (or one file); EntrycheckError naming the
    file, the line and what is wrong for the first invalid one. `definitions`: the user's
    `NAME=SYMBOL` entries, whose names rules may use beside the catalogue's."""
    st = safeio.lstat(directory, "rules")
    if st is None or (stat.S_ISLNK(st.st_mode) and not directory.exists()):
        raise EntrycheckError(f"{safeio.shown(directory)}: no such rules folder or file")
    files = sorted(directory.glob("*.y*ml")) if directory.is_dir() else [directory]
    known = entry_names(definitions)
    rules: list[Rule] = []
    seen: dict[str, str] = {}
    for path in files:
        for rule in _load_file(path, known):
            if rule.id in seen:
                raise EntrycheckError(f"{rule.source}: duplicate rule id {rule.id} "
                                      f"(also in {seen[rule.id]})")
            seen[rule.id] = rule.source
            rules.append(rule)
    if not rules:
        raise EntrycheckError(f"{safeio.shown(directory)}: no rules found")
    return rules


class _Loader(yaml.SafeLoader):
    """The safe YAML scanner and parser, composing nodes under depth and alias limits
    (PyYAML's composer recurses once per nesting level, and aliases can multiply a walk)."""

    def __init__(self, text: str):
        super().__init__(text)
        self._depth = 0
        self._aliases = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        mark = self.peek_event().start_mark
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                raise _Invalid(mark, f"more than {MAX_ALIASES} YAML aliases")
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise _Invalid(mark, f"YAML nested deeper than {MAX_DEPTH} levels")
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _documents(path: Path) -> list[yaml.Node]:
    """The YAML documents of a rule file as nodes; _Invalid or EntrycheckError."""
    data = safeio.read_bytes(path, "rules file", MAX_RULE_FILE)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise EntrycheckError(f"{safeio.shown(path)}:{line}: not UTF-8 text (byte "
                              f"{data[exc.start]:#04x} at offset {exc.start})") from None
    loader = None
    try:
        loader = _Loader(text)
        documents = []
        while loader.check_node():
            documents.append(loader.get_node())
        return documents
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        problem = exc.problem or exc.context or "malformed"
        raise EntrycheckError(f"{safeio.shown(path)}:{line}: invalid YAML: "
                              f"{safeio.shown(problem)}") from None
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        raise EntrycheckError(f"{safeio.shown(path)}:{line}: invalid YAML: character "
                              f"{exc.character!r} is not allowed") from None
    except yaml.YAMLError as exc:
        raise EntrycheckError(f"{safeio.shown(path)}: invalid YAML: "
                              f"{safeio.shown(str(exc).splitlines()[0])}") from None
    finally:
        if loader is not None:
            loader.dispose()


def _load_file(path: Path, known: frozenset[str]) -> list[Rule]:
    try:
        documents = _documents(path)
        return [_rule(node, f"{safeio.shown(path)}:{node.start_mark.line + 1}", known)
                for node in documents if node is not None]
    except _Invalid as exc:
        raise EntrycheckError(_capped(f"{safeio.shown(path)}:{exc.line}: {exc}")) from None
    except EntrycheckError as exc:
        raise EntrycheckError(_capped(str(exc))) from None


def _capped(line: str) -> str:
    return line if len(line) <= MAX_LINE else line[: MAX_LINE - 3] + "..."


def _short(text: str, limit: int = 40) -> str:
    """A user's value short enough to quote inside a longer message."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _rule(node: yaml.Node, source: str, known: frozenset[str]) -> Rule:
    fields = _mapping(node, "a rule must be a mapping")
    for key, (knode, _) in fields.items():
        if key not in _KEYS:
            raise _Invalid(knode, f"unknown key {_short(key)!r} "
                                  f"(allowed: {', '.join(sorted(_KEYS))})")
    rule_id = _string(fields, "id", node)
    if not _ID.match(rule_id):
        raise _Invalid(fields["id"][1], f"bad rule id {_short(rule_id)!r}")
    severity = _string(fields, "severity", node)
    if severity not in SEVERITIES:
        raise _Invalid(fields["severity"][1], f"severity must be one of {', '.join(SEVERITIES)}")
    common = dict(id=rule_id, title=_string(fields, "title", node), severity=severity,
                  message=_message(fields, node), source=source,
                  references=tuple(_strings(fields, "references")),
                  allow=_reasons(fields, "allow", known), bits=_bits(fields),
                  help=_string(fields, "help", node) if "help" in fields else None,
                  help_uri=_uri(fields))
    if "generic" in fields:
        generic = _string(fields, "generic", node)
        if generic not in GENERIC:
            raise _Invalid(fields["generic"][1], f"generic must be one of {', '.join(GENERIC)}")
        for key in ("match", "require"):
            if key in fields:
                raise _Invalid(fields[key][0], f"a generic rule takes no `{key}`")
        if generic != "native_only_boot":
            if "allow_points" in fields:
                raise _Invalid(fields["allow_points"][0],
                               "allow_points goes with `generic: native_only_boot`")
            _no_point(fields)
        return Rule(**common, generic=generic, allow_functions=_reasons(fields, "allow_functions"),
                    allow_roots=_per_entry(fields, "allow_roots", "function", known),
                    allow_points=_per_entry(fields, "allow_points", "hook slot", known))
    if "match" not in fields or "require" not in fields:
        raise _Invalid(node, "a rule needs `match` and `require` (or `generic`)")
    for key in ("allow_functions", "allow_roots"):
        if key in fields:
            raise _Invalid(fields[key][0], f"{key} goes with `generic`")
    if "allow_points" in fields:
        raise _Invalid(fields["allow_points"][0],
                       "allow_points goes with `generic: native_only_boot`")
    _no_point(fields)
    requirement, entries = _requirement(fields["require"][1], known)
    return Rule(**common, matchers=_matchers(fields["match"][1]), requirement=requirement,
                entries=entries)


def _message(fields: dict, parent: yaml.Node) -> str:
    """The message, its placeholders checked: only those in FIELDS ({point} is checked
    by rule kind), with no conversion or format spec ({entry:999999999} is 1 GB)."""
    text = _string(fields, "message", parent)
    node = fields["message"][1]
    try:
        parts = list(string.Formatter().parse(text))
    except ValueError as exc:  # a lone '{' or '}'
        raise _Invalid(node, f"bad message: {exc} (write {{{{ and }}}} for braces)") from None
    for _, name, spec, conversion in parts:
        if name is None:
            continue
        shown = _short(name)
        if name not in FIELDS:
            hint = did_you_mean(name, FIELDS)
            raise _Invalid(node, f"unknown placeholder {{{shown}}} in message (known: "
                                 f"{', '.join('{' + f + '}' for f in FIELDS)}){hint}")
        if spec or conversion:
            raise _Invalid(node, f"placeholder {{{shown}}} takes no conversion or format spec")
    return text


def _no_point(fields: dict) -> None:
    """{point} names where the graphs part: only a native_only_boot rule has one."""
    node = fields["message"][1]
    if any(name == "point" for _, name, _, _ in string.Formatter().parse(node.value)):
        raise _Invalid(node,
                       "placeholder {point} goes with `generic: native_only_boot`")


def _matchers(node: yaml.Node) -> tuple[Matcher, ...]:
    items = node.value if isinstance(node, yaml.SequenceNode) else [node]
    if not items:
        raise _Invalid(node, "match needs at least one matcher")
    out = []
    for item in items:
        fields = _mapping(item, "a matcher must be a mapping with " + ", ".join(MATCHER_KEYS))
        if not fields:
            raise _Invalid(item, f"empty matcher: give one of {', '.join(MATCHER_KEYS)}")
        patterns = {}
        for key, (knode, vnode) in fields.items():
            if key not in MATCHER_KEYS:
                raise _Invalid(knode, f"unknown matcher {_short(key)!r} (allowed: "
                                      f"{', '.join(MATCHER_KEYS)})")
            patterns[key] = _regex(vnode)
        out.append(Matcher(**patterns))
    return tuple(out)


def _requirement(node: yaml.Node, known: frozenset[str]) -> tuple[str, tuple[str, ...]]:
    fields = _mapping(node, "require must be a mapping")
    if len(fields) != 1 or next(iter(fields)) not in REQUIREMENTS:
        raise _Invalid(node, f"require takes exactly one of {', '.join(REQUIREMENTS)}")
    (key, (_, value)), = fields.items()
    if key == "native_only" and isinstance(value, yaml.ScalarNode):
        if value.value in ("true", "yes"):
            return key, ()
        raise _Invalid(value, "native_only is `true` or a list of entries")
    names = _string_list(value)
    if not names:
        raise _Invalid(value, f"{key} needs at least one entry")
    for item in value.value:
        _entry(item, known)
    return key, tuple(names)


def _entry(node: yaml.ScalarNode, known: frozenset[str]) -> str:
    """An entry name, which must be catalogued or defined by the user."""
    if node.value not in known:
        raise _Invalid(node, f"unknown entry {_short(node.value)!r}"
                             f"{did_you_mean(node.value, known)} (not catalogued; define it "
                             "with --entry NAME=SYMBOL)")
    return node.value


def _mapping(node: yaml.Node, message: str) -> dict[str, tuple[yaml.Node, yaml.Node]]:
    if not isinstance(node, yaml.MappingNode):
        raise _Invalid(node, message)
    out: dict[str, tuple[yaml.Node, yaml.Node]] = {}
    for knode, vnode in node.value:
        if not isinstance(knode, yaml.ScalarNode):
            raise _Invalid(knode, "a mapping key must be a plain string")
        if knode.value in out:
            raise _Invalid(knode, f"duplicate key {_short(knode.value)!r}")
        out[knode.value] = (knode, vnode)
    return out


def _string(fields: dict, key: str, parent: yaml.Node) -> str:
    if key not in fields:
        raise _Invalid(parent, f"missing required key {key!r}")
    node = fields[key][1]
    if not isinstance(node, yaml.ScalarNode) or not node.value.strip():
        raise _Invalid(node, f"{key} must be a non-empty string")
    return node.value


def _string_list(node: yaml.Node) -> list[str]:
    if not isinstance(node, yaml.SequenceNode) or not all(
            isinstance(v, yaml.ScalarNode) for v in node.value):
        raise _Invalid(node, "expected a list of strings")
    return [v.value for v in node.value]


def _strings(fields: dict, key: str) -> list[str]:
    if key not in fields:
        return []
    return _string_list(fields[key][1])


def _reasons(fields: dict, key: str, known: frozenset[str] | None = None) -> dict[str, str]:
    """A mapping of names to reasons; with `known`, the names are entries."""
    if key not in fields:
        return {}
    return _reasons_in(fields[key][1], key, known)


def _reasons_in(node: yaml.Node, key: str, known: frozenset[str] | None = None) -> dict[str, str]:
    out = {}
    for name, reason in _mapping(node, f"{key} maps names to reasons").values():
        if known is not None:
            _entry(name, known)
        if not isinstance(reason, yaml.ScalarNode) or not reason.value.strip():
            raise _Invalid(reason, f"{key}: {_short(name.value)} needs a reason")
        out[name.value] = reason.value
    return out


def _per_entry(fields: dict, key: str, what: str,
               known: frozenset[str]) -> dict[str, dict[str, str]]:
    """allow_roots, allow_points: entry name -> {root function or hook slot: reason}."""
    if key not in fields:
        return {}
    out = {}
    for name, value in _mapping(fields[key][1],
                                f"{key} maps entry names to {{{what}: reason}}").values():
        entry = _entry(name, known)
        out[entry] = _reasons_in(value, f"{key}: {_short(entry)}")
    return out


def is_uri(text: str) -> bool:
    """An absolute http(s) URI."""
    return bool(_URI.match(text))


def _uri(fields: dict) -> str | None:
    if "help_uri" not in fields:
        return None
    node = fields["help_uri"][1]
    if not isinstance(node, yaml.ScalarNode) or not _URI.match(node.value):
        raise _Invalid(node, "help_uri must be an absolute http(s) URI")
    return node.value


def _bits(fields: dict) -> int | None:
    if "bits" not in fields:
        return None
    node = fields["bits"][1]
    if not isinstance(node, yaml.ScalarNode) or node.value not in ("32", "64"):
        raise _Invalid(node, "bits must be 32 or 64")
    return int(node.value)


def compile_pattern(text: str) -> Pattern:
    """An RE2 pattern (linear-time matching, bounded memory); ValueError if RE2 cannot
    take it (back-references, look-around, repetitions over 1000, too large)."""
    if len(text) > MAX_PATTERN:
        raise ValueError(f"longer than {MAX_PATTERN} characters")
    options = re2.Options()
    options.log_errors = False  # RE2 would print to stderr
    options.max_mem = RE2_MEMORY
    try:
        return re2.compile(text, options=options)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else "rejected"
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise ValueError(safeio.shown(reason)) from None


def _regex(node: yaml.Node) -> Pattern:
    if not isinstance(node, yaml.ScalarNode):
        raise _Invalid(node, "a matcher value must be a string (a regular expression)")
    try:
        return compile_pattern(node.value)
    except ValueError as exc:
        raise _Invalid(node, f"bad regular expression {_short(node.value)!r}: "
                             f"{_short(str(exc), 80)} (RE2 syntax: no back-references or "
                             "look-around)") from None
