"""Path questions over entry graphs: reach sets, convergence, what an entry skips, why.

Diffs look at each entry's boot path: what it reaches before the kernel proper starts
(`start_kernel`), since later code (CPU hotplug, secondary CPU start-up) leads back into
head code through runtime paths that are not the boot.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import pairwise

from entrycheck.errors import EntrycheckError
from entrycheck.model import Edge, EntryGraph


@dataclass(frozen=True)
class PathRules:
    """What the path questions need of the knowledge, as addresses of one image."""

    boot_ends: frozenset[int]    # the boot path ends here (start_kernel)
    error_exits: frozenset[int]  # reached, never followed (panic)
    noreturn: frozenset[int]

    @property
    def blocked(self) -> frozenset[int]:
        return self.boot_ends | self.error_exits


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
          within: set[int] | None = None) -> set[int]:
    """Breadth-first reach from roots; blocked nodes are reached but not expanded; with
    `within`, only those nodes are visited."""
    seen = set(roots)
    queue = deque(seen)
    succ = graph.succ
    while queue:
        node = queue.popleft()
        if node in blocked and node != graph.root:
            continue
        for nxt in succ.get(node, ()):
            if nxt not in seen and (within is None or nxt in within):
                seen.add(nxt)
                queue.append(nxt)
    return seen


def boot_path(graph: EntryGraph, rules: PathRules) -> set[int]:
    """Functions reached from the entry without going past the end of the boot path
    (start_kernel) or into an error exit (panic): both are reached, not followed."""
    return reach(graph, [graph.root], rules.blocked)


def chain(graph: EntryGraph, target: int, rules: PathRules) -> list[Step]:
    """A shortest call chain from the entry to `target`, on the boot path if there is one."""
    if target not in graph.nodes:
        raise EntrycheckError(f"entry {graph.entry} does not reach {target:#x}")
    on_path = boot_path(graph, rules)
    blocked = rules.blocked - {graph.root}
    parents = _bfs(graph, target, blocked if target in on_path else frozenset(),
                   on_path if target in on_path else None)
    if target not in parents:
        parents = _bfs(graph, target, frozenset(), None)
    path = [target]
    while parents[path[-1]] is not None:
        path.append(parents[path[-1]])
    path.reverse()
    steps = [Step(path[0], graph.name(path[0]), None)]
    steps += [Step(b, graph.name(b), graph.succ[a][b]) for a, b in pairwise(path)]
    return steps


def _bfs(graph: EntryGraph, target: int, blocked: frozenset[int],
         within: set[int] | None) -> dict[int, int | None]:
    parents: dict[int, int | None] = {graph.root: None}
    queue = deque([graph.root])
    while queue:
        node = queue.popleft()
        if node == target:
            break
        if node in blocked:
            continue
        for nxt in graph.succ.get(node, ()):
            if nxt not in parents and (within is None or nxt in within):
                parents[nxt] = node
                queue.append(nxt)
    return parents


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
        for nxt in graph.succ.get(node, ()):
            if nxt not in own:
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
