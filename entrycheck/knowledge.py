"""Kernel knowledge (entry catalogue, noreturn functions, special-section layouts, table
walkers, dispatchers...): loaded from data/x86.yaml and checked against SCHEMA, with the
file and line of the first mistake."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

from entrycheck.errors import EntrycheckError
from entrycheck.model import NONZERO, Possible

if TYPE_CHECKING:
    import yaml

IMAGES = ("any", "vmlinux", "compressed")
FIELD_KINDS = ("rel32", "rel64", "ptr", "u8", "u16", "u32", "s32")
_VERSIONS = re.compile(r"^(any|(<=|>=|<|>|==)\d+(\.\d+){0,2})$")

# The shape of x86.yaml: {key: type}; a type is a Python type, a tuple of allowed values,
# a list of one type, or a dict (keys ending in "?" are optional).
_BY_IMAGE = {"any?": [str], "vmlinux?": [str], "compressed?": [str]}
_LAYOUT = {"versions": str, "size": int, "fields": {"*": [object]}}
SCHEMA: dict = {
    "entries": [{"name": str, "symbols": [str], "mode": (32, 64), "image": ("vmlinux",
                 "compressed"), "bits?": (32, 64), "note?": ("XEN_ELFNOTE_ENTRY",
                 "XEN_ELFNOTE_PHYS32_ENTRY"), "header?": str, "about": str}],
    "reference": str,
    "boot_ends": _BY_IMAGE,
    "error_exits": _BY_IMAGE,
    "report_functions": _BY_IMAGE,
    "early_unavailable": _BY_IMAGE,
    "noreturn": _BY_IMAGE,
    "return_thunks": _BY_IMAGE,
    "argument_preserving": _BY_IMAGE,
    "incidental": _BY_IMAGE,
    "image_bases": _BY_IMAGE,
    "indirect_thunk_prefixes": [str],
    "exception_entries": {"names": [str], "prefixes": [str]},
    "installs": [{"function": str, "handlers": [str], "source": str}],
    "static_call_updates": [{"function": str, "trampoline": int, "target": int,
                             "source": str}],
    "dispatchers": [{"function": str, "arguments": [int], "source": str}],
    "table_walkers": [{"table": str, "walkers": [str], "source": str}],
    "tables": [{"name": str, "section?": str, "start?": str, "stop?": str, "code": [str],
                "structs?": [str], "struct_depth?": int, "sparse?": bool, "source": str,
                "layouts": [_LAYOUT]}],
    "kernel_handoff": {"in": [str], "after_call": [str]},
    "compressed_markers": [str],
    "compressed_base_registers": [str],
    "head_symbols": [str],
    "init_sections": [str],
    "hook_variables": [{"variable": str, "struct": str, "source": str}],
    "boot_facts": [{"entry": str, "function?": str, "argument?": int, "variable?": str,
                    "struct?": str, "value": object, "set_by": str, "source": str}],
}


@dataclass(frozen=True)
class EntrySpec:
    """One catalogued boot entry."""

    name: str
    symbols: tuple[str, ...]
    mode: int
    image: str = "vmlinux"
    bits: int | None = None
    note: str | None = None
    header: str | None = None
    about: str = ""


@dataclass(frozen=True)
class TableLayout:
    """One layout of a descriptor table's entries."""

    versions: str
    size: int
    fields: dict[str, tuple[int, str]]  # name -> (offset, kind)


@dataclass(frozen=True)
class TableSpec:
    """A descriptor table: where it is, which fields point into code, its layouts."""

    name: str
    section: str | None
    start: str | None
    stop: str | None
    code_fields: tuple[str, ...]
    struct_fields: tuple[str, ...]
    layouts: tuple[TableLayout, ...]
    source: str
    sparse: bool = False  # a region scanned for pointers: entries not into code are skipped
    struct_depth: int = 2  # levels of objects followed from a struct field (the struct's own
    # pointers, and those of the objects they point to)


@dataclass(frozen=True)
class ArgumentUse:
    """A function some of whose arguments (numbered from 1) are functions it runs later,
    or, for static_call updates, (trampoline, target)."""

    function: str
    arguments: tuple[int, ...]
    source: str


@dataclass(frozen=True)
class BootFact:
    """What an entry's own path sets before shared code reads it: an argument of a
    function (`function`, `argument`) or a variable (`boot_params.hdr.hardware_subarch`: a
    member path through BTF), for the whole boot or, with `function`, in that function's
    own instructions (`static_call_initialized` is 0 in xen_start_kernel, not in what it
    calls); `value` what it may be."""

    entry: str
    function: str | None
    argument: int | None
    variable: str | None
    value: Possible
    set_by: str
    source: str
    struct: str | None = None  # the variable's struct type, for a member path


@dataclass(frozen=True)
class Knowledge:
    """What entrycheck knows about x86 kernels, independent of any one image."""

    entries: tuple[EntrySpec, ...]
    reference: str
    symbols: dict[str, dict[str, frozenset[str]]]  # list name -> image -> names
    indirect_thunk_prefixes: tuple[str, ...]
    exception_entries: frozenset[str]
    exception_prefixes: tuple[str, ...]
    installs: dict[str, tuple[str, ...]]
    static_call_updates: tuple[ArgumentUse, ...]
    dispatchers: tuple[ArgumentUse, ...]
    table_walkers: dict[str, tuple[str, ...]]
    tables: tuple[TableSpec, ...]
    handoff_in: frozenset[str]
    handoff_after_call: frozenset[str]
    compressed_markers: frozenset[str]
    compressed_base_registers: tuple[str, ...]
    head_symbols: tuple[str, ...]
    init_sections: frozenset[str]
    hook_variables: dict[str, str]  # variable -> its struct type (slots named by member)
    boot_facts: tuple[BootFact, ...]
    digest: str  # of the data file, so caches follow changes to it

    def is_exception_entry(self, name: str) -> bool:
        """Is this where the CPU enters on an exception, interrupt or system call?"""
        return name in self.exception_entries or name.startswith(self.exception_prefixes)

    def names(self, which: str, image: str) -> frozenset[str]:
        """A symbol list (noreturn, error_exits...) for one kind of image."""
        table = self.symbols[which]
        return table.get("any", frozenset()) | table.get(image, frozenset())


@cache
def x86() -> Knowledge:
    """The x86 tables shipped in entrycheck/data/x86.yaml."""
    text = resources.files("entrycheck").joinpath("data/x86.yaml").read_text()
    return load(text, "entrycheck/data/x86.yaml")


def load(text: str, source: str) -> Knowledge:
    """Knowledge from YAML text; EntrycheckError `source:LINE: what is wrong`."""
    import yaml  # here: a cached answer reads no tables

    try:
        node = yaml.compose(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise EntrycheckError(f"{source}:{mark.line + 1 if mark else 0}: invalid YAML") \
            from None
    data = _check(node, SCHEMA, source, "top level")
    for table, table_node in zip(data["tables"], _child(node, "tables").value, strict=True):
        layout_nodes = _child(table_node, "layouts").value
        for layout, layout_node in zip(table["layouts"], layout_nodes, strict=True):
            _check_layout(layout, table, f"{source}:{layout_node.start_mark.line + 1}")
    for fact, fact_node in zip(data["boot_facts"], _child(node, "boot_facts").value,
                               strict=True):
        _check_fact(fact, f"{source}:{fact_node.start_mark.line + 1}")
    return _build(data, hashlib.sha256(text.encode()).hexdigest()[:16])


def _check(node: yaml.Node | None, schema: Any, source: str, where: str) -> Any:
    """The plain value of `node`, checked against `schema`."""
    import yaml

    line = node.start_mark.line + 1 if node is not None else 0

    def bad(what: str) -> EntrycheckError:
        return EntrycheckError(f"{source}:{line}: {where}: {what}")

    if isinstance(schema, dict):
        if not isinstance(node, yaml.MappingNode):
            raise bad("expected a mapping")
        items = {k.value: v for k, v in node.value}
        if "*" in schema:
            return {k: _check(v, schema["*"], source, f"{where}.{k}") for k, v in items.items()}
        known = {k.rstrip("?"): k.endswith("?") for k in schema}
        for key in items:
            if key not in known:
                raise bad(f"unknown key {key!r} (allowed: {', '.join(sorted(known))})")
        for key, optional in known.items():
            if key not in items and not optional:
                raise bad(f"missing key {key!r}")
        return {k: _check(v, schema[k] if k in schema else schema[k + "?"], source,
                          f"{where}.{k}") for k, v in items.items()}
    if isinstance(schema, list):
        if not isinstance(node, yaml.SequenceNode):
            raise bad("expected a list")
        return [_check(v, schema[0], source, f"{where}[{i}]") for i, v in enumerate(node.value)]
    if schema is object:
        return _plain(node)
    if not isinstance(node, yaml.ScalarNode):
        raise bad("expected a single value")
    value = _scalar(node)
    if isinstance(schema, tuple):
        if value not in schema:
            raise bad(f"must be one of {', '.join(map(str, schema))} (got {value!r})")
        return value
    if schema is int and (not isinstance(value, int) or isinstance(value, bool)):
        raise bad(f"expected an integer (got {value!r})")
    if schema is str and not isinstance(value, str):
        raise bad(f"expected a string (got {value!r})")
    return value


def _plain(node: yaml.Node) -> object:
    """Any node as plain lists, dicts and scalars (the caller checks the shape)."""
    import yaml

    if isinstance(node, yaml.MappingNode):
        return {str(k.value): _plain(v) for k, v in node.value}
    if isinstance(node, yaml.SequenceNode):
        return [_plain(v) for v in node.value]
    return _scalar(node)


def _scalar(node: yaml.ScalarNode) -> object:
    """A scalar's value by its resolved tag (ints, booleans, null; else the text)."""
    tag = node.tag.rsplit(":", 1)[-1]
    if tag == "int":
        return int(node.value, 0)
    if tag == "bool":
        return node.value.lower() in ("true", "yes", "on")
    if tag == "null":
        return None
    return node.value


def _child(node: yaml.MappingNode, key: str) -> yaml.Node:
    """The value node of `key` in a mapping node (checked to be there)."""
    return next(v for k, v in node.value if k.value == key)


def _check_layout(layout: dict, table: dict, source: str) -> None:
    """Checks across a layout's fields; `source` is FILE:LINE of the layout."""
    where = f"{source}: table {table['name']}"
    if not _VERSIONS.match(layout["versions"]):
        raise EntrycheckError(f"{where}: bad versions {layout['versions']!r}")
    for name, spec in layout["fields"].items():
        if (len(spec) != 2 or not isinstance(spec[0], int) or spec[1] not in FIELD_KINDS
                or not 0 <= spec[0] < layout["size"]):
            raise EntrycheckError(f"{where}: field {name} must be [offset < size, one of "
                                  f"{', '.join(FIELD_KINDS)}]")
    for name in (*table["code"], *table.get("structs", ())):
        if name not in layout["fields"]:
            raise EntrycheckError(f"{where}: field {name} missing from a layout")
    if not 1 <= table.get("struct_depth", 2) <= 4:
        raise EntrycheckError(f"{where}: struct_depth must be 1 to 4")
    if "section" not in table and not ("start" in table and "stop" in table):
        raise EntrycheckError(f"{where}: needs a section or start and stop symbols")


def _check_fact(fact: dict, source: str) -> None:
    where = f"{source}: boot fact of {fact['entry']} set by {fact['set_by']}"
    if ("variable" in fact) == ("argument" in fact) or \
            ("argument" in fact and "function" not in fact):
        raise EntrycheckError(f"{where}: needs a variable (while a function runs, or "
                              "throughout), or a function and an argument")
    if "." in fact.get("variable", "") and "struct" not in fact:
        raise EntrycheckError(f"{where}: a member path needs the variable's struct type")
    if _possible(fact["value"]) is None:
        raise EntrycheckError(f"{where}: value must be an integer, `nonzero`, "
                              "{one_of: [integers]} or {not: [integers]}")


def _integers(values: object) -> frozenset[int] | None:
    if not isinstance(values, list) or not values or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in values):
        return None
    return frozenset(values)


def _possible(value: object) -> Possible | None:
    """A boot fact's value: an integer, `nonzero`, {one_of: [...]} or {not: [...]}."""
    if value == "nonzero":
        return NONZERO
    if isinstance(value, int) and not isinstance(value, bool):
        return Possible(frozenset({value}))
    if isinstance(value, dict) and len(value) == 1:
        (key, values), = value.items()
        ints = _integers(values)
        if ints is not None and key == "one_of":
            return Possible(ints)
        if ints is not None and key == "not":
            return Possible(excluded=ints)
    return None


def _build(data: dict, digest: str) -> Knowledge:
    lists = ("boot_ends", "error_exits", "report_functions", "early_unavailable", "noreturn",
             "return_thunks", "argument_preserving", "incidental", "image_bases")
    return Knowledge(
        entries=tuple(EntrySpec(e["name"], tuple(e["symbols"]), e["mode"], e["image"],
                                e.get("bits"), e.get("note"), e.get("header"), e["about"])
                      for e in data["entries"]),
        reference=data["reference"],
        symbols={k: {img: frozenset(v) for img, v in data[k].items()} for k in lists},
        indirect_thunk_prefixes=tuple(data["indirect_thunk_prefixes"]),
        exception_entries=frozenset(data["exception_entries"]["names"]),
        exception_prefixes=tuple(data["exception_entries"]["prefixes"]),
        installs={i["function"]: tuple(i["handlers"]) for i in data["installs"]},
        static_call_updates=tuple(ArgumentUse(u["function"], (u["trampoline"], u["target"]),
                                              u["source"]) for u in data["static_call_updates"]),
        dispatchers=tuple(ArgumentUse(d["function"], tuple(d["arguments"]), d["source"])
                          for d in data["dispatchers"]),
        table_walkers={w["table"]: tuple(w["walkers"]) for w in data["table_walkers"]},
        tables=tuple(TableSpec(t["name"], t.get("section"), t.get("start"), t.get("stop"),
                               tuple(t["code"]), tuple(t.get("structs", ())),
                               tuple(TableLayout(lay["versions"], lay["size"],
                                                 {n: (f[0], f[1])
                                                  for n, f in lay["fields"].items()})
                                     for lay in t["layouts"]), t["source"],
                               t.get("sparse", False), t.get("struct_depth", 2))
                     for t in data["tables"]),
        handoff_in=frozenset(data["kernel_handoff"]["in"]),
        handoff_after_call=frozenset(data["kernel_handoff"]["after_call"]),
        compressed_markers=frozenset(data["compressed_markers"]),
        compressed_base_registers=tuple(data["compressed_base_registers"]),
        head_symbols=tuple(data["head_symbols"]),
        init_sections=frozenset(data["init_sections"]),
        hook_variables={h["variable"]: h["struct"] for h in data["hook_variables"]},
        boot_facts=tuple(BootFact(f["entry"], f.get("function"), f.get("argument"),
                                  f.get("variable"),
                                  _possible(f["value"]),
                                  f["set_by"], f["source"], f.get("struct"))
                    for f in data["boot_facts"]),
        digest=digest,
    )


def version_in(version: tuple[int, ...], spec: str) -> bool:
    """Does a kernel version (6, 12, 117) fall in a range such as ">=6.3" or "any"?"""
    if spec == "any":
        return True
    m = re.match(r"^(<=|>=|<|>|==)(.*)$", spec)
    op, bound = m.group(1), tuple(int(x) for x in m.group(2).split("."))
    have = version[: len(bound)]
    return {"<": have < bound, "<=": have <= bound, ">": have > bound, ">=": have >= bound,
            "==": have == bound}[op]
