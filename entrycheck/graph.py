"""Function-level call graphs, built outward from one entry by decoding what it reaches.

Edges say what they are (call, jump, fall-through, far transfer, indirect through a data
slot or a register). Ops tables are resolved per entry: a slot's static initializer gives
its target, unless code on the entry's own path stores into the slot (xen_start_kernel
writing xen_* handlers into pv_ops): then the stored targets replace it for that entry.
"""

from __future__ import annotations

from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import NamedTuple

import networkx as nx

from entrycheck.binary.functions import Function, FunctionTable
from entrycheck.binary.image import Image
from entrycheck.decode.decoder import AFTER_CALL, Decoder
from entrycheck.entries import Entry, image_kind
from entrycheck.knowledge import Knowledge
from entrycheck.model import EdgeKind, FunctionFacts, Transfer
from entrycheck.special.tables import SpecialSections


class Edge(NamedTuple):
    """Why a caller reaches a callee: the first site found, and what resolved it (a tuple:
    graphs hold tens of thousands and the cache loads them all)."""

    kind: EdgeKind
    site: int
    text: str
    via: str | None = None

    def as_json(self) -> dict:
        out = {"kind": str(self.kind), "site": f"{self.site:#x}", "instruction": self.text}
        if self.via:
            out["via"] = self.via
        return out


class Unresolved(NamedTuple):
    """An indirect transfer that stays unresolved."""

    function: str
    site: int
    text: str

    def as_json(self) -> dict:
        return {"function": self.function, "site": f"{self.site:#x}", "instruction": self.text}


@dataclass
class EntryGraph:
    """What one entry reaches: nodes are function names with `address`, `section`,
    `returns`; each edge carries an `Edge` under the key `edge`."""

    entry: Entry
    root: str
    graph: nx.DiGraph
    unresolved: list[Unresolved] = field(default_factory=list)
    handoffs: list[Unresolved] = field(default_factory=list)  # jumps into the vmlinux


class GraphBuilder:
    """Builds entry graphs; decoded functions are shared between entries."""

    def __init__(self, image: Image, functions: FunctionTable, knowledge: Knowledge):
        self.image = image
        self.functions = functions
        compressed = image_kind(image, knowledge) == "compressed"
        self.decoder = Decoder(image, functions, knowledge.noreturn, SpecialSections(image),
                               knowledge.compressed_base_registers if compressed else frozenset(),
                               knowledge.static_call_updates)
        self.installs = knowledge.installs
        self.handoff_in = knowledge.handoff_in if compressed else frozenset()
        self.handoff_after_call = knowledge.handoff_after_call if compressed else frozenset()
        self._facts: dict[tuple[int, int, int], FunctionFacts] = {}
        self._names: dict[tuple[int, int, int], tuple[str, ...]] = {}

    def facts(self, func: Function, mode: int, at: int | None = None) -> FunctionFacts:
        """Decoded facts of a function, also covering code entered mid-function at `at`."""
        at = func.start if at is None else at
        key = (func.start, mode, at)
        if key not in self._facts:
            self._facts[key] = self.decoder.decode(func, mode, [at])
        return self._facts[key]

    def build(self, entry: Entry, stop: frozenset[str] = frozenset()) -> EntryGraph:
        """The graph of everything `entry` reaches, not expanding functions in `stop`."""
        return _Walk(self, entry, stop).run()

    def data_names(self, func: Function, mode: int, at: int) -> tuple[str, ...]:
        """Names of the data symbols a function references (cpu_tlbstate, pv_ops...)."""
        key = (func.start, mode, at)
        if key not in self._names:
            names = set()
            for _, addr in self._facts[key].data_refs:
                sym = self.image.symbol_covering(addr)
                if sym is not None and sym.size:
                    names.add(sym.name)
            self._names[key] = tuple(sorted(names))
        return self._names[key]

    def slot_name(self, slot: int) -> str:
        """`symbol+0xoff` for a data address (a function's name for a trampoline)."""
        func = self.functions.starting_at(slot)
        if func is not None:
            return func.name
        sym = self.image.symbol_covering(slot)
        if sym is None:
            return f"{slot:#x}"
        off = slot - sym.value
        return f"{sym.name}+{off:#x}" if off else sym.name


class _Walk:
    """One breadth-first walk from an entry."""

    def __init__(self, builder: GraphBuilder, entry: Entry, stop: frozenset[str]):
        self.b = builder
        self.entry = entry
        self.stop = stop
        self.graph = nx.DiGraph()
        self.queue: deque[tuple[Function, int, int]] = deque()
        self.seen: set[tuple[int, int, int]] = set()
        self.slot_sites: dict[int, list[tuple[str, Transfer]]] = defaultdict(list)
        self.stores: dict[int, dict[int, str]] = defaultdict(dict)
        self.unresolved: dict[tuple[str, int], Unresolved] = {}
        self.handoffs: list[Unresolved] = []
        self.static_slot_edges: list[tuple[str, str, int]] = []

    def run(self) -> EntryGraph:
        root = self.b.functions.at(self.entry.address)
        if root is None:
            raise ValueError(f"entry {self.entry.name} at {self.entry.address:#x} is not code")
        self._visit(root, self.entry.mode, self.entry.address)
        while self.queue:
            func, mode, at = self.queue.popleft()
            self._expand(func, mode, at)
        self._strong_update(root.name)
        self._propagate_returns()
        self._drop_falls_after_noreturn(root.name)
        return EntryGraph(self.entry, root.name, self.graph,
                          sorted(self.unresolved.values(), key=lambda u: (u.function, u.site)),
                          self.handoffs)

    def _visit(self, func: Function, mode: int, at: int) -> None:
        key = (func.start, mode, at)
        if key in self.seen:
            return
        self.seen.add(key)
        if func.name not in self.graph:
            self.graph.add_node(func.name, address=func.start, section=func.section, mode=mode)
        if func.name not in self.stop or func.start == self.entry.address:
            self.queue.append((func, mode, at))

    def _expand(self, func: Function, mode: int, at: int) -> None:
        facts = self.b.facts(func, mode, at)
        node = self.graph.nodes[func.name]
        node["returns"] = node.get("returns", False) or facts.returns
        node["refs"] = tuple(sorted({*node.get("refs", ()), *self.b.data_names(func, mode, at)}))
        node["privileged"] = tuple(sorted({text for _, text in facts.privileged}))
        for handler_name in self.b.installs.get(func.name, ()):
            handler = self.b.functions.named(handler_name)
            if handler is not None:
                self._edge(func.name, Transfer(func.start, EdgeKind.EXCEPTION, handler.start,
                                               self.b.image.bits,
                                               text=f"installs {handler_name}"),
                           handler.start, EdgeKind.EXCEPTION)
        for t in facts.transfers:
            self._edge(func.name, t, t.target, t.kind)
        hands_off = self._hands_off(func, facts)
        for t in facts.unresolved:
            if hands_off and t.kind == EdgeKind.REGISTER and t.text.startswith("jmp"):
                if all(h.site != t.site for h in self.handoffs):
                    self.handoffs.append(Unresolved(func.name, t.site, t.text))
                continue
            if t.slot is not None:
                self.slot_sites[t.slot].append((func.name, t))
                for value in self.stores.get(t.slot, ()):
                    self._edge(func.name, t, value, EdgeKind.OPS)
            if t.slot is None or t.slot not in self.stores:
                self.unresolved[(func.name, t.site)] = Unresolved(func.name, t.site, t.text)
        for _site, slot, value in facts.stores:
            if value in self.stores[slot]:
                continue
            self.stores[slot][value] = func.name
            for caller, t in self.slot_sites.get(slot, ()):
                self.unresolved.pop((caller, t.site), None)
                self._edge(caller, t, value, EdgeKind.OPS)

    def _hands_off(self, func: Function, facts: FunctionFacts) -> bool:
        """Does this compressed-kernel function jump into the decompressed vmlinux?"""
        if func.name in self.b.handoff_in:
            return True
        if not self.b.handoff_after_call:
            return False
        called = (self.b.functions.at(t.target) for t in facts.transfers
                  if t.kind == EdgeKind.CALL and t.target is not None)
        return any(f is not None and f.name in self.b.handoff_after_call for f in called)

    def _edge(self, caller: str, t: Transfer, target: int | None, kind: EdgeKind) -> None:
        callee = self.b.functions.at(target) if target is not None else None
        if callee is None:
            self.unresolved[(caller, t.site)] = Unresolved(caller, t.site, t.text)
            return
        if kind == EdgeKind.CALL and callee.name.startswith("__SCT__"):
            # a static_call trampoline: a slot that this entry's updates may retarget
            t = Transfer(t.site, kind, target, t.mode, callee.start, t.text)
            self.slot_sites[callee.start].append((caller, t))
            for value in self.stores.get(callee.start, ()):
                self._edge(caller, t, value, EdgeKind.OPS)
            t = Transfer(t.site, kind, target, t.mode, None, t.text)
        via = None
        if t.slot is not None:
            via = self.b.slot_name(t.slot)
            if kind == EdgeKind.OPS:
                via += f" (stored by {self.stores[t.slot][target]})"
            else:
                self.slot_sites[t.slot].append((caller, t))
                self.static_slot_edges.append((caller, callee.name, t.slot))
                for value in self.stores.get(t.slot, ()):
                    self._edge(caller, t, value, EdgeKind.OPS)
        self._visit(callee, t.mode, target)
        if not self.graph.has_edge(caller, callee.name):
            self.graph.add_edge(caller, callee.name, edge=Edge(kind, t.site, t.text, via))
        if kind in (EdgeKind.JUMP, EdgeKind.FALLTHROUGH) or t.text.startswith("jmp"):
            self.graph[caller][callee.name]["tail"] = True  # some site leaves for good

    def _strong_update(self, root: str) -> None:
        """Drop a slot's static target where this entry's own code overwrote the slot,
        then drop what is no longer reachable."""
        dropped = False
        for caller, callee, slot in self.static_slot_edges:
            if not self.stores.get(slot) or not self.graph.has_edge(caller, callee):
                continue
            stored = {f.name for v in self.stores[slot] if (f := self.b.functions.at(v))}
            if callee not in stored and self.graph[caller][callee]["edge"].kind != EdgeKind.OPS:
                self.graph.remove_edge(caller, callee)
                dropped = True
        if dropped:
            self._prune(root)

    def _prune(self, root: str) -> None:
        """Drop what the root no longer reaches."""
        keep = nx.descendants(self.graph, root) | {root}
        self.graph.remove_nodes_from([n for n in list(self.graph) if n not in keep])
        self.unresolved = {k: u for k, u in self.unresolved.items() if u.function in keep}
        self.handoffs = [h for h in self.handoffs if h.function in keep]

    def _drop_falls_after_noreturn(self, root: str) -> None:
        """A fall-through after a trailing call holds only if the callee returns."""
        g = self.graph
        dead = []
        for a, b, d in g.edges(data=True):
            if d["edge"].kind == EdgeKind.FALLTHROUGH and d["edge"].text.startswith(AFTER_CALL):
                callee = self.b.functions.at(int(d["edge"].text[len(AFTER_CALL):], 16))
                if callee is None or g.nodes.get(callee.name, {}).get("returns") is False:
                    dead.append((a, b))
        if dead:
            g.remove_edges_from(dead)
            self._prune(root)

    def _propagate_returns(self) -> None:
        """A function returns if it has a `ret`, or tail-jumps to one that returns."""
        g = self.graph
        changed = True
        while changed:
            changed = False
            for node, returns in g.nodes(data="returns", default=True):
                if returns:
                    continue
                for succ in g.successors(node):
                    if g[node][succ].get("tail") and g.nodes[succ].get("returns", True):
                        g.nodes[node]["returns"] = changed = True
                        break
