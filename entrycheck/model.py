"""The types the stages exchange: functions, decoded sites, edges and their kinds, graphs.

A function is identified by its start address (two static functions may share a name);
names are for people. A decoded function is a `FunctionFacts`: the control transfers
leaving it (`Site`s) and the effects the resolvers read (stores of code addresses,
constant call arguments, data references, privileged instructions). An entry's graph
(`EntryGraph`) maps each reached function to a `Node` and each caller-callee pair to the
`Edge` that first reached it; every edge says its kind and the resolver that made it.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from itertools import islice
from operator import le
from typing import ClassVar, NamedTuple

from entrycheck.errors import EntrycheckError


class EdgeKind(StrEnum):
    """How control leaves one function for another."""

    CALL = "call"                  # direct call
    JUMP = "jump"                  # direct jmp/jcc into another function (tail call)
    FALLTHROUGH = "fallthrough"    # runs off the end into the next symbol
    FAR = "far"                    # far jump / far return (lret), often a mode switch
    SLOT = "indirect-slot"         # call/jmp through a data slot whose content is known
    REGISTER = "indirect-register" # call/jmp through a register loaded with a constant
    OPS = "indirect-ops"           # through an ops slot or static call this entry's path set
    EXCEPTION = "exception"        # a handler the function installs (IDT), entered on a fault
    ERROR_PATH = "error-path"      # a call on the way to BUG() or panic() (printing the error)
    ALTERNATIVE = "alternative"    # a call/jmp in replacement or fallback code
    HANDOFF = "handoff"            # the compressed kernel's jump into the decompressed vmlinux
    CALLBACK = "callback"          # a function handed to a dispatcher (kernel_thread, ...)
    TABLE = "table"                # an entry of a linker table the function walks (initcalls)
    REGISTRATION = "registration"  # a member of a struct of function pointers registered
    INLINED = "inlined"            # a static inline helper's code inside its caller (DWARF)


class EdgeStyle(NamedTuple):
    """How graphs draw an edge kind, and what it means for paths."""

    line: str             # Graphviz style
    colour: str
    indirect: bool        # resolved from data rather than an immediate
    fault: bool = False   # entered only on a fault or a report (the fault layer)
    deferred: bool = False  # the callee runs later, from elsewhere (a thread, a callback)


EDGE_STYLES: dict[EdgeKind, EdgeStyle] = {
    EdgeKind.CALL: EdgeStyle("solid", "#333333", False),
    EdgeKind.JUMP: EdgeStyle("dashed", "#333333", False),
    EdgeKind.FALLTHROUGH: EdgeStyle("dotted", "#333333", False),
    EdgeKind.FAR: EdgeStyle("bold", "#333333", False),
    EdgeKind.SLOT: EdgeStyle("solid", "#7b3fb5", True),
    EdgeKind.REGISTER: EdgeStyle("solid", "#0f8a8a", True),
    EdgeKind.OPS: EdgeStyle("solid", "#c0392b", True),
    EdgeKind.EXCEPTION: EdgeStyle("dashed", "#a0522d", True, fault=True),
    EdgeKind.ERROR_PATH: EdgeStyle("dashed", "#a0522d", False, fault=True),
    EdgeKind.ALTERNATIVE: EdgeStyle("solid", "#2c7fb8", False),
    EdgeKind.HANDOFF: EdgeStyle("bold", "#1a9850", True),
    EdgeKind.CALLBACK: EdgeStyle("solid", "#d95f02", True, deferred=True),
    EdgeKind.TABLE: EdgeStyle("solid", "#e7298a", True),
    EdgeKind.REGISTRATION: EdgeStyle("solid", "#66a61e", True, deferred=True),
    EdgeKind.INLINED: EdgeStyle("dotted", "#777777", False),
}
FAULT_KINDS = frozenset(k for k, s in EDGE_STYLES.items() if s.fault)
DEFERRED_KINDS = frozenset(k for k, s in EDGE_STYLES.items() if s.deferred)
CONTROL_KINDS = frozenset(EdgeKind) - FAULT_KINDS - DEFERRED_KINDS  # control goes there now


class Function(NamedTuple):
    """A code symbol with the extent this project decodes for it."""

    name: str
    start: int
    end: int
    section: str
    aliases: tuple[str, ...] = ()

    @property
    def size(self) -> int:
        return self.end - self.start


class How(StrEnum):
    """How a site gives its target, as decoded."""

    DIRECT = "direct"          # an immediate
    SLOT = "slot"              # a memory operand at a known address
    REGISTER = "register"      # a register (value known or not)
    STACK = "stack"            # a far return's value on the stack
    MEMORY = "memory"          # a memory operand off registers: unknown
    TABLE = "table"            # a jump table inside the function (targets decoded in place)
    FALLTHROUGH = "fallthrough"


class Site(NamedTuple):
    """One control transfer out of a decoded function (or resolved inside it)."""

    address: int
    call: bool                 # a call (returns here) rather than a jump
    how: How
    target: int | None         # the known target (immediate, or the constant the operand holds)
    mode: int                  # CPU mode at the target
    slot: int | None = None    # the data slot read (SLOT; REGISTER loaded from a slot)
    text: str = ""             # not filled by the decoder: decoder.instruction_text() on demand
    after_call: int | None = None  # FALLTHROUGH after a trailing call: the callee
    args: tuple[tuple[str, int], ...] = ()  # constant argument registers at a call
    thunk: int | None = None   # the retpoline thunk a REGISTER site goes through
    doomed: bool = False       # leads, with no branch between, to BUG() or panic()
    condition: str | None = None  # runs only once patched in (a static key, alternatives)


class Store(NamedTuple):
    """A code address written into a data slot."""

    address: int
    slot: int
    value: int
    copied: bool = False  # part of a struct copy: the source object holds the value


@dataclass
class FunctionFacts:
    """What decoding one function found (entry-independent: shared by every entry)."""

    start: int
    mode: int
    sites: list[Site] = field(default_factory=list)
    stores: list[Store] = field(default_factory=list)
    data_refs: list[int] = field(default_factory=list)   # memory operands with an address
    code_refs: list[int] = field(default_factory=list)   # function addresses that escape
    data_addrs: list[int] = field(default_factory=list)  # data objects' addresses taken
    privileged: list[str] = field(default_factory=list)
    switches: list[tuple[int, int, int]] = field(default_factory=list)  # mode switches
    # inside the function: (far jump or return, where it lands, the mode there)
    returns: bool = False
    instructions: int = 0


class Edge(NamedTuple):
    """Why a caller reaches a callee: the first site found, its kind, and what resolved it;
    `condition` when the site runs only once code is patched (a static key flipped,
    alternatives applied in start_kernel)."""

    kind: EdgeKind
    site: int
    resolver: str
    text: str = ""
    via: str | None = None
    condition: str | None = None
    storer: int | None = None  # for a target an entry's code stored: the function that did

    def as_json(self) -> dict:
        out = {"kind": str(self.kind), "site": f"{self.site:#x}", "instruction": self.text,
               "resolver": self.resolver}
        if self.via:
            out["via"] = self.via
        if self.condition:
            out["condition"] = self.condition
        return out


class Hook(NamedTuple):
    """A hook an entry's code calls through (an ops slot, a static call's trampoline) and
    one target it holds for that entry: by the static initializer, or by a store of the
    entry's own code (`storer`)."""

    slot: int
    name: str      # the slot's member path (x86_init.resources.memory_setup) or __SCT__name
    reader: int    # a function that calls through it
    target: int
    storer: int | None = None

    def as_json(self, name_of) -> dict:
        out = {"slot": self.name, "reader": name_of(self.reader),
               "target": name_of(self.target)}
        if self.storer is not None:
            out["stored_by"] = name_of(self.storer)
        return out


class Possible(NamedTuple):
    """What a boot fact allows a value to be: one of `values` (None: any value) and none
    of `excluded` (`nonzero` excludes 0)."""

    values: frozenset[int] | None = None
    excluded: frozenset[int] = frozenset()

    def equals(self, imm: int) -> bool | None:
        """Is the value `imm` (True, False), or is that not decided (None)?"""
        if imm in self.excluded or (self.values is not None and imm not in self.values):
            return False
        if self.values is not None and len(self.values) == 1:
            return True
        return None

    def describe(self) -> str:
        if self.values is not None:
            return " or ".join(str(v) for v in sorted(self.values))
        return "not " + " or ".join(str(v) for v in sorted(self.excluded))


NONZERO = Possible(excluded=frozenset({0}))


class Pruned(NamedTuple):
    """An edge the entry's boot facts cut: its call site lies on the dead side of a branch
    the fact decides (`if (xen_pv_domain())` on native)."""

    caller: int
    callee: int
    site: int
    branch: int   # the decided conditional branch
    fact: str     # `xen_domain_type is 0 or 2`

    def as_json(self, name_of) -> dict:
        return {"caller": name_of(self.caller), "callee": name_of(self.callee),
                "site": f"{self.site:#x}", "branch": f"{self.branch:#x}", "fact": self.fact}


class Unresolved(NamedTuple):
    """An indirect transfer no resolver could follow, and why."""

    function: int
    site: int
    text: str
    reason: str

    def as_json(self, name: str) -> dict:
        return {"function": name, "site": f"{self.site:#x}", "instruction": self.text,
                "reason": self.reason}


@dataclass
class Node:
    """A reached function, with what the rules and reports read of it."""

    address: int
    name: str
    section: str
    mode: int
    image: str = "vmlinux"
    returns: bool = False
    init: bool = False
    refs: tuple[str, ...] = ()
    privileged: tuple[str, ...] = ()


class EntryGraph:
    """What one entry reaches: `nodes[a]` the Node at address a, `succ[a][b]` the edge from a
    to b, for people and small questions; `adjacency()` for traversals of the whole graph.

    Stored compactly (a whole-boot graph holds ~40,000 nodes and ~250,000 edges): the nodes
    in address order and the edges as arrays in that order (CSR), each edge a number in an
    `EdgeTable` that the entries of one analysis share. Node and Edge objects are made when
    asked for, so a graph loads from the cache in milliseconds and a walk over it touches
    only integers.
    """

    def __init__(self, entry: str, root: int, table: GraphTable,
                 unresolved: list[Unresolved] | None = None,
                 resolved: dict[str, int] | None = None,
                 handoffs: list[Unresolved] | None = None,
                 hooks: list[Hook] | None = None, pruned: list[Pruned] | None = None,
                 lists: Callable[[str], list] | None = None):
        """`lists`, instead of the four lists: what reads one (by name) when first asked
        for (a cached graph: most questions need one of them or none)."""
        self.entry = entry
        self.root = root
        self.table = table
        self.resolved = resolved or {}  # resolver -> sites it resolved
        self._lists: dict[str, list] = {} if lists is not None else {
            "unresolved": unresolved or [], "handoffs": handoffs or [], "hooks": hooks or [],
            "pruned": pruned or []}
        self._read_list = lists
        self.nodes = _NodeView(table)
        self.succ = _SuccView(table)
        self.reach_sets: dict[tuple, frozenset[int]] = {}  # the path questions' sets, kept

    def _listed(self, name: str) -> list:
        found = self._lists.get(name)
        if found is None:
            found = self._lists[name] = self._read_list(name)
        return found

    @property
    def unresolved(self) -> list[Unresolved]:
        """The sites no resolver could follow, and why."""
        return self._listed("unresolved")

    @property
    def handoffs(self) -> list[Unresolved]:
        """The compressed kernel's jumps into the decompressed vmlinux."""
        return self._listed("handoffs")

    @property
    def hooks(self) -> list[Hook]:
        """The hook slots the entry calls through, and their targets."""
        return self._listed("hooks")

    @property
    def pruned(self) -> list[Pruned]:
        """The edges the entry's boot facts cut."""
        return self._listed("pruned")

    @classmethod
    def build(cls, entry: str, root: int, nodes: dict[int, Node],
              succ: dict[int, dict[int, Edge]], edges: EdgeTable | None = None,
              **rest) -> EntryGraph:
        """A graph from plain dicts (as a walk or a splice makes them); its edges join
        `edges` (a table of their own by default)."""
        return cls(entry, root, GraphTable.from_dicts(nodes, succ, edges), **rest)

    def __contains__(self, address: object) -> bool:
        return address in self.table.index

    def edges(self):
        """(caller, callee, edge) for every edge (makes an Edge each: for small uses)."""
        t = self.table
        for i, a in enumerate(t.addresses):
            for j in range(t.offsets[i], t.offsets[i + 1]):
                yield a, t.addresses[t.dst[j]], t.edge(j)

    def adjacency(self) -> tuple[dict[int, int], array, array, array, array, array]:
        """(address -> index, addresses, offsets, destination indexes, kind codes,
        condition flags) for fast traversals (kind codes index `KIND_CODES`)."""
        t = self.table
        return t.index, t.addresses, t.offsets, t.dst, t.kind, t.cond

    def storers(self) -> array:
        """Per edge, the node index of the function whose store gave its target, or -1."""
        return self.table.storers()

    def name(self, address: int) -> str:
        t = self.table
        return t.strings[t.name[t.index[address]]]

    def brief(self, address: int) -> tuple[str, str, bool]:
        """(name, section, init) of a node, without making its Node."""
        t = self.table
        i = t.index[address]
        return t.strings[t.name[i]], t.strings[t.section[i]], bool(t.flags[i] & t.INIT)

    def briefs(self, addresses: Collection[int]) -> list[tuple[str, int, str, bool]]:
        """(name, address, section, init) of the nodes among `addresses`, sorted by name
        then address, without making Nodes (a whole-boot answer lists some 50,000: read
        in the table's name order; a few are sorted)."""
        t = self.table
        index, strings, names, nodes = t.index, t.strings, t.name, t.addresses
        if len(addresses) * 16 < len(index):
            found = [(strings[names[i]], a, i) for a in addresses
                     if (i := index.get(a)) is not None]
            rows = [i for _, _, i in sorted(found)]
        else:
            wanted = addresses if isinstance(addresses, set | frozenset) else set(addresses)
            rows = [i for i in t.by_name if nodes[i] in wanted]
        sections, flags, init = t.section, t.flags, t.INIT
        return [(strings[names[i]], nodes[i], strings[sections[i]], bool(flags[i] & init))
                for i in rows]


GRAPH_LISTS: dict[str, type] = {  # what an entry graph lists beside its arrays
    "unresolved": Unresolved, "handoffs": Unresolved, "hooks": Hook, "pruned": Pruned}


KIND_CODES: tuple[EdgeKind, ...] = tuple(EdgeKind)
_KIND_INDEX = {k: i for i, k in enumerate(KIND_CODES)}
NO_STORER = (1 << 64) - 1  # the storer column's value for an edge no store gave


class Strings:
    """Strings interned as numbers (-1 stands for None), shared by an analysis's graphs."""

    def __init__(self, items: list[str] | None = None):
        self.items: list[str] = list(items or [])
        self._numbers: dict[str, int] | None = None  # made when a string is first added

    def number(self, text: str | None) -> int:
        if text is None:
            return -1
        if self._numbers is None:
            self._numbers = {text: i for i, text in enumerate(self.items)}
        i = self._numbers.get(text)
        if i is None:
            i = self._numbers[text] = len(self.items)
            self.items.append(text)
        return i


class EdgeTable:
    """Every edge of an analysis's graphs, numbered: what the entry graphs' CSR arrays point
    into, shared by the entries and stored once in the cache. Built as a list of Edge
    objects; stored as columns (strings interned), from which a loaded table makes its
    Edge objects on demand."""

    ARRAYS: ClassVar[dict[str, str]] = {
        "kind": "b", "site": "Q", "resolver": "i", "text": "i", "via": "i", "cond_text": "i",
        "storer": "Q"}

    def __init__(self, strings: Strings | None = None,
                 arrays: Mapping[str, array] | None = None, count: int | None = None):
        """A new table, or one of `count` edges (default: as many as the columns hold)
        read back from its `arrays`, each made when first used."""
        self.strings = strings or Strings()
        if arrays is not None and count is None:
            count = len(arrays["site"])
        self._edges: list[Edge | None] = [] if arrays is None else [None] * count
        self._columns = arrays
        # what traversals read of every edge, kept beside the objects
        self._kind_codes: array | None = array("b") if arrays is None else None
        self._condition_flags: array | None = array("b") if arrays is None else None

    def __len__(self) -> int:
        return len(self._edges)

    def add(self, kind: EdgeKind, site: int, resolver: str, text: str = "",
            via: str | None = None, condition: str | None = None,
            storer: int | None = None) -> int:
        """A new edge's number."""
        return self.add_edge(Edge(kind, site, resolver, text, via, condition, storer))

    def add_edge(self, edge: Edge) -> int:
        if self._columns is not None:  # loaded: back to objects, to add to them
            self._kind_codes, self._condition_flags = self._kinds, self._conds
            self._edges = [self.edge(n) for n in range(len(self._edges))]
            self._columns = None
        self._edges.append(edge)
        self._kinds.append(_KIND_INDEX[edge.kind])
        self._conds.append(edge.condition is not None)
        return len(self._edges) - 1

    @property
    def _kinds(self) -> array:
        """Per edge, its kind as an index of KIND_CODES."""
        if self._kind_codes is None:
            self._kind_codes = self._columns["kind"]
        return self._kind_codes

    @property
    def _conds(self) -> array:
        """Per edge, 1 when it runs under a condition (made on first use when loaded)."""
        if self._condition_flags is None:
            self._condition_flags = array("b", [c >= 0 for c in self._columns["cond_text"]])
        return self._condition_flags

    def edge(self, n: int) -> Edge:
        edge = self._edges[n]
        if edge is None:
            edge = self._edges[n] = self._from_columns(n)
        return edge

    def kind_code(self, n: int) -> int:
        """The edge's kind as an index of KIND_CODES."""
        return self._kinds[n]

    def storer_of(self, n: int) -> int | None:
        return self.edge(n).storer

    def codes(self, numbers: list[int]) -> tuple[list[int], list[int]]:
        """Kind codes and condition flags of the edges numbered."""
        kinds, conds = self._kinds, self._conds
        return [kinds[n] for n in numbers], [conds[n] for n in numbers]

    def storers(self, numbers: array) -> list[int]:
        """The storer address of each edge numbered (NO_STORER where none)."""
        if self._columns is not None:
            column = self._columns["storer"]
            return [column[n] for n in numbers]
        edges = self._edges
        return [NO_STORER if (by := edges[n].storer) is None else by for n in numbers]

    def _from_columns(self, n: int) -> Edge:
        c, st = self._columns, self.strings.items

        def s(i: int) -> str | None:
            return None if i < 0 else st[i]

        by = c["storer"][n]
        return Edge(KIND_CODES[c["kind"][n]], c["site"][n], st[c["resolver"][n]],
                    s(c["text"][n]) or "", s(c["via"][n]), s(c["cond_text"][n]),
                    None if by == NO_STORER else by)

    def blobs(self) -> dict[str, bytes]:
        if self._columns is None:
            s, edges = self.strings.number, self._edges
            self._columns = {
                "kind": self._kinds,
                "site": array("Q", [e.site for e in edges]),
                "resolver": array("i", [s(e.resolver) for e in edges]),
                "text": array("i", [s(e.text) if e.text else -1 for e in edges]),
                "via": array("i", [s(e.via) for e in edges]),
                "cond_text": array("i", [s(e.condition) for e in edges]),
                "storer": array("Q", [NO_STORER if e.storer is None else e.storer
                                      for e in edges])}
        return {name: self._columns[name].tobytes() for name in self.ARRAYS}

    @classmethod
    def from_blobs(cls, strings: Strings, blobs: Mapping[str, bytes],
                   count: int) -> EdgeTable:
        """A table of `count` edges read back from `blobs`' bytes, each column when first
        used and checked then (its length, and that its strings and kinds exist)."""
        n = len(strings.items)
        ranges = {"kind": (0, len(KIND_CODES)), "resolver": (0, n), "text": (-1, n),
                  "via": (-1, n), "cond_text": (-1, n)}
        return cls(strings, _LazyArrays(cls.ARRAYS, blobs, count, ranges), count)


class _LazyArrays(Mapping):
    """Column name -> array of `count` items, made from its blob's bytes on first use;
    values outside a column's range (low, high) make it damaged."""

    def __init__(self, codes: dict[str, str], blobs: Mapping[str, bytes], count: int,
                 ranges: dict[str, tuple[int, int]]):
        self._codes, self._blobs, self._count, self._ranges = codes, blobs, count, ranges
        self._made: dict[str, array] = {}

    def __getitem__(self, name: str) -> array:
        made = self._made.get(name)
        if made is None:
            made = array(self._codes[name])
            try:
                made.frombytes(self._blobs[name])
                low, high = self._ranges.get(name, (None, None))
                if len(made) != self._count or (low is not None and made and not (
                        low <= min(made) and max(made) < high)):
                    raise ValueError("length or values out of range")
            except (KeyError, ValueError) as exc:  # made by hand: the checksum held
                raise EntrycheckError(f"a cached edge column ({name}) is damaged: "
                                      "remove the cache folder") from exc
            self._made[name] = made
        return made

    def __iter__(self):
        return iter(self._codes)

    def __len__(self) -> int:
        return len(self._codes)


def _arrays(codes: dict[str, str], blobs: dict[str, bytes]) -> dict[str, array]:
    out = {}
    for name, code in codes.items():
        arr = array(code)
        arr.frombytes(blobs[name])
        out[name] = arr
    return out


class GraphTable:
    """The arrays behind an EntryGraph (see there): nodes in address order, edges per caller
    (CSR: `offsets`, `dst`, and `eid` into the shared EdgeTable; each edge's kind and
    condition flag copied beside it for traversals); `blobs`/`from_blobs` for the cache."""

    ARRAYS: ClassVar[dict[str, str]] = {
        "addresses": "Q", "name": "i", "section": "i", "mode": "b", "flags": "b",
        "extra_off": "i", "extra": "i", "offsets": "i", "dst": "i", "eid": "i", "kind": "b",
        "cond": "b", "by_name": "i"}
    RETURNS: ClassVar[int] = 1
    INIT: ClassVar[int] = 2
    COMPRESSED: ClassVar[int] = 4

    def __init__(self, edges: EdgeTable, arrays: dict[str, array]):
        self.edges = edges
        self.strings = edges.strings.items
        for name, arr in arrays.items():
            setattr(self, name, arr)
        self.index = {a: i for i, a in enumerate(self.addresses)}
        self._nodes: dict[int, Node] = {}
        self._storers: array | None = None

    @classmethod
    def from_dicts(cls, nodes: dict[int, Node], succ: dict[int, dict[int, Edge]],
                   edges: EdgeTable | None = None) -> GraphTable:
        """A table from Edge objects (each added to `edges`, a table of its own by
        default)."""
        edges = edges if edges is not None else EdgeTable()
        numbered = {a: {b: edges.add_edge(e) for b, e in out.items() if b in nodes}
                    for a, out in succ.items() if a in nodes}
        return cls.from_walk(nodes, numbered, edges)

    @classmethod
    def from_walk(cls, nodes: dict[int, Node], succ: dict[int, dict[int, int]],
                  edges: EdgeTable) -> GraphTable:
        """A table from numbered edges (caller -> callee -> number in `edges`; every
        callee of a node is a node)."""
        s = edges.strings.number
        order = sorted(nodes)
        index = {a: i for i, a in enumerate(order)}
        cols: dict[str, list[int]] = {name: [] for name in cls.ARRAYS}
        name, section, mode, flags = cols["name"], cols["section"], cols["mode"], cols["flags"]
        extra, extra_off, offsets = cols["extra"], cols["extra_off"], cols["offsets"]
        dst, eid = cols["dst"], cols["eid"]
        extra_off.append(0)
        offsets.append(0)
        for a in order:
            n = nodes[a]
            name.append(s(n.name))
            section.append(s(n.section))
            mode.append(n.mode)
            flags.append(cls.RETURNS * n.returns | cls.INIT * n.init
                         | cls.COMPRESSED * (n.image == "compressed"))
            if n.refs or n.privileged:
                extra.append(len(n.refs))
                extra.extend(s(r) for r in n.refs)
                extra.extend(s(p) for p in n.privileged)
            extra_off.append(len(extra))
            out = succ.get(a)
            if out:
                callees = sorted(out)
                dst.extend(map(index.__getitem__, callees))
                eid.extend(map(out.__getitem__, callees))
            offsets.append(len(dst))
        cols["addresses"] = order
        cols["kind"], cols["cond"] = edges.codes(eid)
        strings = edges.strings.items  # node indexes by name, then address (a stable sort)
        cols["by_name"] = sorted(range(len(order)), key=[strings[i] for i in name].__getitem__)
        return cls(edges, {k: array(code, cols[k]) for k, code in cls.ARRAYS.items()})

    def node(self, i: int) -> Node:
        node = self._nodes.get(i)
        if node is None:
            st, flags = self.strings, self.flags[i]
            lo, hi = self.extra_off[i], self.extra_off[i + 1]
            nrefs = self.extra[lo] if hi > lo else 0
            refs = tuple(st[x] for x in self.extra[lo + 1 : lo + 1 + nrefs])
            privileged = tuple(st[x] for x in self.extra[lo + 1 + nrefs : hi])
            node = Node(self.addresses[i], st[self.name[i]], st[self.section[i]], self.mode[i],
                        "compressed" if flags & self.COMPRESSED else "vmlinux",
                        bool(flags & self.RETURNS), bool(flags & self.INIT), refs, privileged)
            self._nodes[i] = node
        return node

    def edge(self, j: int) -> Edge:
        edge = self.edges.edge(self.eid[j])
        if edge.storer is not None and edge.storer not in self.index:
            edge = edge._replace(storer=None)  # a storer this entry does not reach
        return edge

    def storers(self) -> array:
        """Per edge, the node index of its storer, or -1 (made on first use)."""
        if self._storers is None:
            index = self.index
            self._storers = array("i", [index.get(by, -1) for by in self.edges.storers(self.eid)])
        return self._storers

    def blobs(self) -> dict[str, bytes]:
        return {name: getattr(self, name).tobytes() for name in self.ARRAYS}

    @classmethod
    def from_blobs(cls, edges: EdgeTable, blobs: dict[str, bytes]) -> GraphTable:
        """A table read back from its arrays' bytes; ValueError unless they fit together
        (what the rest of the code indexes with is in range)."""
        arrays = _arrays(cls.ARRAYS, blobs)
        _check(arrays, len(edges), len(edges.strings.items))
        return cls(edges, arrays)


_KIND_BYTES = bytes(range(len(KIND_CODES)))


def _check(a: dict[str, array], edges: int, strings: int) -> None:
    """Raise ValueError unless a graph's arrays are consistent (an entry made by hand)."""
    n = len(a["addresses"])
    if any(len(a[k]) != n for k in ("name", "section", "mode", "flags", "by_name")) \
            or len(a["offsets"]) != n + 1 or len(a["extra_off"]) != n + 1:
        raise ValueError("node arrays of different lengths")
    for off, items in (("offsets", ("dst", "eid", "kind", "cond")), ("extra_off", ("extra",))):
        bounds = a[off]
        if bounds[0] != 0 or not all(map(le, bounds, islice(bounds, 1, None))) \
                or any(len(a[k]) != bounds[-1] for k in items):
            raise ValueError(f"{off} do not bound their arrays")
    for name, valid in (("kind", _KIND_BYTES), ("cond", b"\0\1")):  # bytes: checked in C
        if a[name].tobytes().translate(None, valid):
            raise ValueError(f"{name} out of range")
    for name, high in (("dst", n), ("eid", edges), ("name", strings), ("section", strings),
                       ("extra", strings), ("by_name", n)):
        column = a[name]  # read unsigned, a negative value is above any high: one pass
        if column and max(memoryview(column).cast("B").cast("I")) >= high:
            raise ValueError(f"{name} out of range")


class _NodeView(Mapping):
    """address -> Node, made on demand."""

    def __init__(self, table: GraphTable):
        self._t = table

    def __getitem__(self, address: int) -> Node:
        return self._t.node(self._t.index[address])

    def __contains__(self, address: object) -> bool:
        return address in self._t.index

    def __iter__(self):
        return iter(self._t.addresses)

    def __len__(self) -> int:
        return len(self._t.addresses)


class _SuccView(Mapping):
    """address -> {callee address: Edge}, made on demand (and kept) per caller."""

    def __init__(self, table: GraphTable):
        self._t = table
        self._made: dict[int, dict[int, Edge]] = {}

    def __getitem__(self, address: int) -> dict[int, Edge]:
        out = self._made.get(address)
        if out is None:
            t = self._t
            i = t.index[address]
            out = {t.addresses[t.dst[j]]: t.edge(j) for j in range(t.offsets[i], t.offsets[i + 1])}
            self._made[address] = out
        return out

    def __contains__(self, address: object) -> bool:
        return address in self._t.index

    def __iter__(self):
        return iter(self._t.addresses)

    def __len__(self) -> int:
        return len(self._t.addresses)
