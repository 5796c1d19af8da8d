"""The types the stages exchange: functions, decoded sites, edges and their kinds, graphs.

A function is identified by its start address (two static functions may share a name);
names are for people. A decoded function is a `FunctionFacts`: the control transfers
leaving it (`Site`s) and the effects the resolvers read (stores of code addresses,
constant call arguments, data references, privileged instructions). An entry's graph
(`EntryGraph`) maps each reached function to a `Node` and each caller-callee pair to the
`Edge` that first reached it; every edge says its kind and the resolver that made it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import NamedTuple


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

    def as_json(self) -> dict:
        out = {"kind": str(self.kind), "site": f"{self.site:#x}", "instruction": self.text,
               "resolver": self.resolver}
        if self.via:
            out["via"] = self.via
        if self.condition:
            out["condition"] = self.condition
        return out


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


@dataclass
class EntryGraph:
    """What one entry reaches: nodes by address, `succ[a][b]` the edge from a to b."""

    entry: str
    root: int
    nodes: dict[int, Node]
    succ: dict[int, dict[int, Edge]]
    unresolved: list[Unresolved] = field(default_factory=list)
    resolved: dict[str, int] = field(default_factory=dict)  # resolver -> sites it resolved
    handoffs: list[Unresolved] = field(default_factory=list)

    def __contains__(self, address: object) -> bool:
        return address in self.nodes

    def edges(self):
        """(caller, callee, edge) for every edge."""
        for a, out in self.succ.items():
            for b, edge in out.items():
                yield a, b, edge

    def name(self, address: int) -> str:
        return self.nodes[address].name
