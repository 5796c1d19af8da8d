"""Rule files: YAML documents validated against the rule schema, with file:line errors.

A rule names a feature (matchers: a function, an inlined function, a referenced data
symbol, a privileged instruction) and a requirement on which entries reach it, or it is
the generic rule that flags init code only the reference entry runs. See rules/README.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from entrycheck.errors import EntrycheckError

SEVERITIES = ("error", "warning", "note")
MATCHER_KEYS = ("function", "inlined", "data", "instruction")
REQUIREMENTS = ("reached_by_all", "not_reached_by", "native_only")
GENERIC = ("native_only_init",)
_KEYS = {"id", "title", "severity", "message", "references", "match", "require", "allow",
         "generic", "allow_functions", "bits"}
_ID = re.compile(r"^[A-Za-z][\w.-]*$")


@dataclass(frozen=True)
class Matcher:
    """A feature seen in one function: every given field must hold (regexes, full match)."""

    function: re.Pattern | None = None
    inlined: re.Pattern | None = None
    data: re.Pattern | None = None
    instruction: re.Pattern | None = None


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
    allow_functions: dict[str, str] = field(default_factory=dict)
    bits: int | None = None  # applies only to kernels of this width

    def as_json(self) -> dict:
        return {"id": self.id, "title": self.title, "severity": self.severity,
                "message": self.message, "references": list(self.references),
                "source": self.source}


class _Invalid(Exception):
    def __init__(self, node: yaml.Node, message: str):
        super().__init__(message)
        self.line = node.start_mark.line + 1


def load_rules(directory: Path) -> list[Rule]:
    """Every rule of the `*.yaml` files in a folder (or one file); EntrycheckError naming the
    file, the line and what is wrong for the first invalid one."""
    if not directory.exists():
        raise EntrycheckError(f"{directory}: no such rules folder or file")
    files = sorted(directory.glob("*.y*ml")) if directory.is_dir() else [directory]
    rules: list[Rule] = []
    seen: dict[str, str] = {}
    for path in files:
        for rule in _load_file(path):
            if rule.id in seen:
                raise EntrycheckError(f"{rule.source}: duplicate rule id {rule.id} "
                                      f"(also in {seen[rule.id]})")
            seen[rule.id] = rule.source
            rules.append(rule)
    if not rules:
        raise EntrycheckError(f"{directory}: no rules found")
    return rules


def _load_file(path: Path) -> list[Rule]:
    try:
        text = path.read_text()
        documents = list(yaml.compose_all(text))
    except OSError as exc:
        raise EntrycheckError(f"{path}: cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise EntrycheckError(f"{where}: invalid YAML: {problem}") from None
    rules = []
    for node in documents:
        if node is None:
            continue
        try:
            rules.append(_rule(node, f"{path}:{node.start_mark.line + 1}"))
        except _Invalid as exc:
            raise EntrycheckError(f"{path}:{exc.line}: {exc}") from None
    return rules


def _rule(node: yaml.Node, source: str) -> Rule:
    fields = _mapping(node, "a rule must be a mapping")
    for key, (knode, _) in fields.items():
        if key not in _KEYS:
            raise _Invalid(knode, f"unknown key {key!r} (allowed: {', '.join(sorted(_KEYS))})")
    rule_id = _string(fields, "id", node)
    if not _ID.match(rule_id):
        raise _Invalid(fields["id"][1], f"bad rule id {rule_id!r}")
    severity = _string(fields, "severity", node)
    if severity not in SEVERITIES:
        raise _Invalid(fields["severity"][1], f"severity must be one of {', '.join(SEVERITIES)}")
    common = dict(id=rule_id, title=_string(fields, "title", node), severity=severity,
                  message=_string(fields, "message", node), source=source,
                  references=tuple(_strings(fields, "references")),
                  allow=_reasons(fields, "allow"), bits=_bits(fields))
    if "generic" in fields:
        generic = _string(fields, "generic", node)
        if generic not in GENERIC:
            raise _Invalid(fields["generic"][1], f"generic must be one of {', '.join(GENERIC)}")
        return Rule(**common, generic=generic, allow_functions=_reasons(fields, "allow_functions"))
    if "match" not in fields or "require" not in fields:
        raise _Invalid(node, "a rule needs `match` and `require` (or `generic`)")
    requirement, entries = _requirement(fields["require"][1])
    return Rule(**common, matchers=_matchers(fields["match"][1]), requirement=requirement,
                entries=entries)


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
                raise _Invalid(knode, f"unknown matcher {key!r} (allowed: "
                                      f"{', '.join(MATCHER_KEYS)})")
            patterns[key] = _regex(vnode)
        out.append(Matcher(**patterns))
    return tuple(out)


def _requirement(node: yaml.Node) -> tuple[str, tuple[str, ...]]:
    fields = _mapping(node, "require must be a mapping")
    if len(fields) != 1 or next(iter(fields)) not in REQUIREMENTS:
        raise _Invalid(node, f"require takes exactly one of {', '.join(REQUIREMENTS)}")
    (key, (_, value)), = fields.items()
    if key == "native_only":
        if isinstance(value, yaml.ScalarNode) and value.value in ("true", "yes"):
            return key, ()
        return key, tuple(_string_list(value))
    return key, tuple(_string_list(value))


def _mapping(node: yaml.Node, message: str) -> dict[str, tuple[yaml.Node, yaml.Node]]:
    if not isinstance(node, yaml.MappingNode):
        raise _Invalid(node, message)
    return {k.value: (k, v) for k, v in node.value}


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


def _reasons(fields: dict, key: str) -> dict[str, str]:
    if key not in fields:
        return {}
    out = {}
    for name, reason in _mapping(fields[key][1], f"{key} maps names to reasons").values():
        if not isinstance(reason, yaml.ScalarNode) or not reason.value.strip():
            raise _Invalid(reason, f"{key}: {name.value} needs a reason")
        out[name.value] = reason.value
    return out


def _bits(fields: dict) -> int | None:
    if "bits" not in fields:
        return None
    node = fields["bits"][1]
    if not isinstance(node, yaml.ScalarNode) or node.value not in ("32", "64"):
        raise _Invalid(node, "bits must be 32 or 64")
    return int(node.value)


def _regex(node: yaml.Node) -> re.Pattern:
    if not isinstance(node, yaml.ScalarNode):
        raise _Invalid(node, "a matcher value must be a string (a regular expression)")
    try:
        return re.compile(node.value)
    except re.error as exc:
        raise _Invalid(node, f"bad regular expression {node.value!r}: {exc}") from None
