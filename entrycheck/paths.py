"""Path questions over entry graphs: reach sets, convergence, what an entry skips, why.

Three layers of what an entry reaches:
- the boot path: up to `start_kernel`, in normal flow, without callbacks that run later
  (a thread, a work item) and without what is incidental to early init (the compiler's
  unlikely `.cold` code, diagnostic output): what the entry's own early init runs;
- normal flow: everything reached without entering the fault layer;
- the fault layer: what only exceptions, interrupts, WARN/BUG reports and error exits
  (panic) reach. `why` shows it, marked; diffs and precision figures leave it out.
`skip`'s list before convergence looks at the boot path, since later code (CPU hotplug,
secondary CPU start-up) leads back into head code through runtime paths that are not the
boot; the whole-boot diff (`whole_diff`) compares normal flows, by divergence point.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import pairwise

from entrycheck.errors import EntrycheckError
from entrycheck.model import (
    DEFERRED_KINDS,
    FAULT_KINDS,
    KIND_CODES,
    Edge,
    EdgeKind,
    EntryGraph,
)


@dataclass(frozen=True)
class PathRules:
    """What the path questions need of the knowledge, as addresses of one image."""

    boot_ends: frozenset[int]    # the boot path ends here (start_kernel)
    error_exits: frozenset[int]  # reached, never followed (panic)
    noreturn: frozenset[int]
    reports: frozenset[int] = frozenset()  # WARN/BUG reporting: entered on the fault layer
    early_unavailable: frozenset[int] = frozenset()  # cannot run before start_kernel
    incidental: frozenset[int] = frozenset()  # left out of the boot path: `.cold` parts
    # (what the compiler split off as unlikely), diagnostic output, printf's %p handler

    @property
    def blocked(self) -> frozenset[int]:
        return self.boot_ends | self.error_exits

    @property
    def faults(self) -> frozenset[int]:
        """Callees an edge into which is a fault edge."""
        return self.error_exits | self.reports




@dataclass(frozen=True)
class Step:
    """One step of a call chain: the function reached and the edge that reached it."""

    address: int
    function: str
    edge: Edge | None

    def as_json(self) -> dict:
        out: dict = {"function": self.function, "address": f"{self.address:#x}"}
        if self.edge is not None:
            out["edge"] = self.edge.as_json()
        return out


@dataclass(frozen=True)
class Divergence:
    """How an entry's boot path relates to the reference entry's (addresses)."""

    entry: str
    reference: str
    convergence: list[int]     # first shared functions where the paths join for good
    reference_only: list[int]  # what the reference reaches before convergence, entry never
    entry_only: list[int]      # what the entry reaches before convergence, reference never


def reach(graph: EntryGraph, roots: Iterable[int], blocked: frozenset[int] = frozenset(),
          within: set[int] | None = None, skip_kinds: frozenset = frozenset(),
          skip_callees: frozenset[int] = frozenset(), unconditional: bool = False,
          stored_on_path: bool = False) -> set[int]:
    """Breadth-first reach from roots; blocked nodes are reached but not expanded; with
    `within`, only those nodes are visited; edges of `skip_kinds`, into `skip_callees` or
    (with `unconditional`) under a condition are not followed; with `stored_on_path`, an
    edge whose target a store gave is followed once the storing function is reached (a
    store that runs only later, such as native_kick_ap's into initial_code for secondary
    CPUs, does not decide an earlier call)."""
    index, addrs, off, dst, kind, cond = graph.adjacency()
    storer = graph.storers() if stored_on_path else None
    waiting: dict[int, list[int]] = {}  # storer index -> destinations held back
    skip = {i for i, k in enumerate(KIND_CODES) if k in skip_kinds}
    root = index.get(graph.root)
    stop = {index[a] for a in blocked if a in index} - {root}
    avoid = {index[a] for a in skip_callees if a in index}
    inside = None if within is None else {index[a] for a in within if a in index}
    seen = {index[r] for r in roots if r in index}
    queue = deque(seen)
    while queue:
        i = queue.popleft()
        for n in waiting.pop(i, ()):
            if n not in seen:
                seen.add(n)
                queue.append(n)
        if i in stop:
            continue
        for j in range(off[i], off[i + 1]):
            n = dst[j]
            if n in seen or n in avoid or kind[j] in skip or (unconditional and cond[j]):
                continue
            if inside is not None and n not in inside:
                continue
            if storer is not None and storer[j] >= 0 and storer[j] not in seen:
                waiting.setdefault(storer[j], []).append(n)
                continue
            seen.add(n)
            queue.append(n)
    return {addrs[i] for i in seen}


def _remembered(graph: EntryGraph, key: tuple, compute) -> frozenset[int]:
    """A reach set of the graph, computed once (whole-boot sets cost a walk of ~250,000
    edges, and a query asks for them many times)."""
    found = graph.reach_sets.get(key)
    if found is None:
        found = graph.reach_sets[key] = frozenset(compute())
    return found


def boot_path(graph: EntryGraph, rules: PathRules, with_faults: bool = False
              ) -> frozenset[int]:
    """What the entry runs before the kernel proper, with the kernel text as linked:
    reached without going past the end of the boot path (start_kernel), into an error exit
    (panic, reached but not followed), into the fault layer (unless `with_faults`), into
    what cannot run before start_kernel, into incidental code (`.cold` parts, printk:
    knowledge `incidental`), through a callback that runs later, or through code patched
    in later (alternatives, static keys)."""
    skip = DEFERRED_KINDS if with_faults else DEFERRED_KINDS | FAULT_KINDS
    callees = rules.early_unavailable | (frozenset() if with_faults
                                         else rules.reports | rules.incidental)
    return _remembered(graph, ("boot", rules, with_faults), lambda: reach(
        graph, [graph.root], rules.blocked, skip_kinds=skip, skip_callees=callees,
        unconditional=True, stored_on_path=True))


def normal_flow(graph: EntryGraph, rules: PathRules) -> frozenset[int]:
    """Everything the entry reaches outside the fault layer (the whole boot)."""
    return _remembered(graph, ("normal", rules), lambda: reach(
        graph, [graph.root], rules.error_exits, skip_kinds=FAULT_KINDS,
        skip_callees=rules.reports))


def is_fault(edge: Edge, callee: int, rules: PathRules) -> bool:
    """Does this edge enter the fault layer?"""
    return edge.kind in FAULT_KINDS or callee in rules.faults


def chain(graph: EntryGraph, target: int, rules: PathRules) -> list[Step]:
    """A shortest call chain from the entry to `target`, on the boot path if there is one."""
    if target not in graph.nodes:
        raise EntrycheckError(f"entry {graph.entry} does not reach {target:#x}")
    parents: dict[int, int | None] = {}
    layers = ((boot_path(graph, rules), rules.blocked - {graph.root}),  # up to start_kernel
              (normal_flow(graph, rules), rules.error_exits - {graph.root}),  # through it
              (None, frozenset()))
    for within, blocked in layers:
        if within is None or target in within:
            for stored in (False, True):  # static flow first, then stores in boot order
                parents = _bfs(graph, target, blocked, within, stored)
                if target in parents:
                    break
            if target in parents:
                break
    path = [target]
    while parents[path[-1]] is not None:
        path.append(parents[path[-1]])
    path.reverse()
    steps = [Step(path[0], graph.name(path[0]), None)]
    steps += [Step(b, graph.name(b), graph.succ[a][b]) for a, b in pairwise(path)]
    return steps


def _bfs(graph: EntryGraph, target: int, blocked: frozenset[int],
         within: set[int] | None, stored: bool) -> dict[int, int | None]:
    """Breadth-first parents from the root until `target` (addresses). An edge whose
    target a store gave is left out, or with `stored` taken once the storing function is
    reached: the boot CPU's chain comes before a secondary CPU's start through a slot the
    boot stores into later."""
    index, addrs, off, dst, _, _ = graph.adjacency()
    storer = graph.storers()
    goal = index.get(target)
    root = index[graph.root]
    stop = {index[a] for a in blocked if a in index}
    inside = None if within is None else {index[a] for a in within if a in index}
    parents: dict[int, int | None] = {root: None}
    waiting: dict[int, list[tuple[int, int]]] = {}  # storer -> (caller, callee) held back
    queue = deque([root])
    while queue:
        i = queue.popleft()
        if i == goal:
            break
        for caller, n in waiting.pop(i, ()):
            if n not in parents:
                parents[n] = caller
                queue.append(n)
        if i in stop:
            continue
        for j in range(off[i], off[i + 1]):
            n = dst[j]
            if n not in parents and (inside is None or n in inside):
                if storer[j] >= 0 and storer[j] not in parents:
                    if stored:
                        waiting.setdefault(storer[j], []).append((i, n))
                    continue
                parents[n] = i
                queue.append(n)
    return {addrs[i]: None if p is None else addrs[p] for i, p in parents.items()}


def diverge(graph: EntryGraph, reference: EntryGraph, rules: PathRules) -> Divergence:
    """Convergence points, and what each boot path reaches before them that the other's
    boot path never does."""
    own, ref = boot_path(graph, rules), boot_path(reference, rules)
    joins = _convergence(graph, own, ref, rules)
    return Divergence(
        graph.entry,
        reference.entry,
        joins,
        sorted(_before(reference, ref, joins) - own),
        sorted(_before(graph, own, joins) - ref),
    )


def _convergence(graph: EntryGraph, own: set[int], ref: set[int],
                 rules: PathRules) -> list[int]:
    """The first functions on the entry's path that the reference reaches too and that
    never return: a shared helper that returns to entry-only code (clear_bss) is no join."""
    if graph.root in ref:
        return [graph.root]
    joins: set[int] = set()
    seen = {graph.root}
    queue = deque([graph.root])
    while queue:
        node = queue.popleft()
        for nxt, edge in graph.succ.get(node, {}).items():
            if nxt not in own or edge.kind in DEFERRED_KINDS | FAULT_KINDS or edge.condition:
                continue
            if nxt in ref:
                if _never_returns(graph, nxt, rules):
                    joins.add(nxt)
                continue
            if nxt not in seen:
                seen.add(nxt)
                queue.append(nxt)
    return sorted(joins)


def _never_returns(graph: EntryGraph, address: int, rules: PathRules) -> bool:
    if address in rules.error_exits:
        return False
    return address in rules.noreturn or not graph.nodes[address].returns


def _before(graph: EntryGraph, path: set[int], joins: list[int]) -> set[int]:
    """The part of a boot path before the join points, less what the joins reach."""
    after = reach(graph, [j for j in joins if j in path], within=path)
    before = reach(graph, [graph.root], frozenset(joins), within=path)
    return before - after


@dataclass(frozen=True)
class Point:
    """Where two entries' graphs part: the entry's own code before the paths converge
    (`entry`), a hook slot or static call that holds different targets (`hook`), a branch
    on a boot fact that cuts a call for the other entry (`fact`: `if (xen_pv_domain())`),
    or another edge only one entry's graph has (`edge`: a store, a registration)."""

    kind: str
    name: str

    def as_json(self) -> dict:
        return {"kind": self.kind, "name": self.name}


@dataclass(frozen=True)
class WholeDiff:
    """What each of two entries reaches over the whole boot that the other does not, by
    the point where their graphs part (addresses)."""

    entry: str
    reference: str
    reference_only: dict[int, Point]  # function -> the point it is reached through
    entry_only: dict[int, Point]
    entry_flow: frozenset[int]  # what each reaches (normal flow, or all with faults)
    reference_flow: frozenset[int]


def whole_diff(graph: EntryGraph, reference: EntryGraph, rules: PathRules,
               with_faults: bool = False) -> WholeDiff:
    """The whole-boot difference of two entries, in normal flow (all edges `with_faults`),
    each differing function attributed to the nearest point where the graphs part."""
    def flow(g: EntryGraph) -> frozenset[int]:
        return frozenset(g.nodes) if with_faults else normal_flow(g, rules)

    own, ref = flow(graph), flow(reference)
    return WholeDiff(graph.entry, reference.entry,
                     _attributed(reference, graph, ref, own, rules, with_faults),
                     _attributed(graph, reference, own, ref, rules, with_faults), own, ref)


def _attributed(graph: EntryGraph, other: EntryGraph, mine: frozenset[int],
                theirs: frozenset[int], rules: PathRules,
                with_faults: bool) -> dict[int, Point]:
    """The functions of `mine` not in `theirs`, each with the point of the breadth-first
    search (from every point at once) that reaches it first."""
    only = mine - theirs
    hooks = {(h.reader, h.target): h.name for h in graph.hooks}
    cut = {(p.caller, p.callee): p for p in other.pruned}
    index, addrs, off, dst, kind, _ = graph.adjacency()
    fault_kinds = set() if with_faults else {i for i, k in enumerate(KIND_CODES)
                                             if k in FAULT_KINDS}
    fault_callees = frozenset() if with_faults else rules.faults
    found: dict[int, Point] = {}
    queue: deque[int] = deque()
    if graph.root in only:
        found[graph.root] = Point("entry", graph.entry)
        queue.append(graph.root)
    for a in sorted(mine & theirs):
        if a in rules.error_exits:
            continue
        i = index[a]
        for j in range(off[i], off[i + 1]):
            b = addrs[dst[j]]
            if b not in only or b in found or kind[j] in fault_kinds or b in fault_callees:
                continue
            pruned = cut.get((a, b))  # a recorded hook, else a fact, else a slot read
            slot = hooks.get((a, b)) or (None if pruned else _slot_read(graph, j))
            step = f"{graph.name(a)} -[{KIND_CODES[kind[j]]}]-> {graph.name(b)}"
            if slot:
                found[b] = Point("hook", slot)
            elif pruned:
                found[b] = Point("fact", f"{step}: cut for {other.entry} at "
                                         f"{graph.name(a)}+{pruned.branch - a:#x} "
                                         f"({pruned.fact} there)")
            else:
                found[b] = Point("edge", step)
            queue.append(b)
    while queue:
        a = queue.popleft()
        if a in rules.error_exits:
            continue
        i = index[a]
        for j in range(off[i], off[i + 1]):
            b = addrs[dst[j]]
            if b in only and b not in found and kind[j] not in fault_kinds \
                    and b not in fault_callees:
                found[b] = found[a]
                queue.append(b)
    return found


_SLOT_KINDS = frozenset({EdgeKind.SLOT, EdgeKind.OPS})
_STORED_BY = " (stored by "


def _slot_read(graph: EntryGraph, j: int) -> str | None:
    """The slot an edge (by its index) calls through, when it is a call through a slot
    (a hook's reader the graph's hook list names under another reader of that slot)."""
    edge = graph.table.edge(j)
    if edge.kind not in _SLOT_KINDS or not edge.via:
        return None
    return edge.via.split(_STORED_BY, 1)[0]


def hook_table(graphs: list[EntryGraph], flows: list[set[int]]) -> dict[str, dict[str, list[int]]]:
    """slot -> entry -> the targets it holds where the entry's code calls through it (in
    the given flows), for the slots whose targets differ between the entries."""
    table: dict[str, dict[str, set[int]]] = {}
    for graph, flow in zip(graphs, flows, strict=True):
        for h in graph.hooks:
            if h.reader in flow and h.target in flow:
                table.setdefault(h.name, {g.entry: set() for g in graphs})[graph.entry].add(
                    h.target)
    return {slot: {e: sorted(t) for e, t in row.items()}
            for slot, row in sorted(table.items())
            if len({frozenset(t) for t in row.values()}) > 1}
