"""Path questions over entry graphs: reach sets, convergence, what an entry skips, why.

Diffs look at each entry's boot path: what it reaches before the kernel proper starts
(`start_kernel`), since later code (CPU hotplug, secondary CPU start-up) leads back into
head code through runtime paths that are not the boot.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from itertools import pairwise

import networkx as nx

from entrycheck.errors import EntrycheckError
from entrycheck.graph import Edge, EntryGraph
from entrycheck.knowledge import Knowledge


@dataclass(frozen=True)
class Link:
    """One step of a call chain: the function reached and the edge that reached it."""

    function: str
    edge: Edge | None

    def as_json(self) -> dict:
        out: dict = {"function": self.function}
        if self.edge is not None:
            out["edge"] = self.edge.as_json()
        return out


@dataclass(frozen=True)
class Divergence:
    """How an entry's boot path relates to the reference entry's."""

    entry: str
    reference: str
    convergence: list[str]     # first shared functions where the paths join for good
    reference_only: list[str]  # what the reference reaches before convergence, entry never
    entry_only: list[str]      # what the entry reaches before convergence, reference never


def boot_path(graph: EntryGraph, knowledge: Knowledge) -> set[str]:
    """Functions reached from the entry without going past the end of the boot path
    (start_kernel) or into an error exit (panic): both are reached, not followed."""
    return _walk(graph.graph, graph.root, blocked=knowledge.boot_ends | knowledge.error_exits)


def chain(graph: EntryGraph, function: str, knowledge: Knowledge) -> list[Link]:
    """A shortest call chain from the entry to `function`, on the boot path if there is one."""
    g = graph.graph
    if function not in g:
        raise EntrycheckError(f"entry {graph.entry.name} does not reach {function}")
    on_path = boot_path(graph, knowledge)
    blocked = (knowledge.boot_ends | knowledge.error_exits) - {graph.root}
    early = nx.subgraph_view(g, filter_node=on_path.__contains__,
                             filter_edge=lambda a, _: a not in blocked)
    within = early if function in on_path else g
    nodes = nx.shortest_path(within, graph.root, function)
    links = [Link(nodes[0], None)]
    links += [Link(b, g[a][b]["edge"]) for a, b in pairwise(nodes)]
    return links


def diverge(graph: EntryGraph, reference: EntryGraph, knowledge: Knowledge) -> Divergence:
    """Convergence points, and what each boot path reaches before them that the other's
    boot path never does."""
    own, ref = boot_path(graph, knowledge), boot_path(reference, knowledge)
    joins = _convergence(graph, own, ref, knowledge)
    return Divergence(
        graph.entry.name,
        reference.entry.name,
        joins,
        sorted(_before(reference, ref, joins) - own),
        sorted(_before(graph, own, joins) - ref),
    )


def _convergence(graph: EntryGraph, own: set[str], ref: set[str],
                 knowledge: Knowledge) -> list[str]:
    """The first functions on the entry's path that the reference reaches too and that
    never return: a shared helper that returns to entry-only code (clear_bss) is no join."""
    if graph.root in ref:
        return [graph.root]
    g = graph.graph.subgraph(own)
    joins: set[str] = set()
    seen = {graph.root}
    queue = deque([graph.root])
    while queue:
        node = queue.popleft()
        for succ in g.successors(node):
            if succ in ref:
                if _never_returns(g, succ, knowledge):
                    joins.add(succ)
                continue
            if succ not in seen:
                seen.add(succ)
                queue.append(succ)
    return sorted(joins)


def _never_returns(g: nx.DiGraph, function: str, knowledge: Knowledge) -> bool:
    if function in knowledge.error_exits:
        return False
    return function in knowledge.noreturn or g.nodes[function].get("returns") is False


def _before(graph: EntryGraph, path: set[str], joins: list[str]) -> set[str]:
    """The part of a boot path before the join points, less what the joins reach."""
    g = graph.graph.subgraph(path)
    after: set[str] = set()
    for join in joins:
        if join in g:
            after |= nx.descendants(g, join) | {join}
    return _walk(g, graph.root, blocked=frozenset(joins)) - after


def _walk(g: nx.DiGraph, root: str, blocked: frozenset[str]) -> set[str]:
    """Breadth-first reach from root; blocked nodes are reached but not expanded."""
    seen = {root}
    queue = deque([root])
    while queue:
        node = queue.popleft()
        if node in blocked and node != root:
            continue
        for succ in g.successors(node):
            if succ not in seen:
                seen.add(succ)
                queue.append(succ)
    return seen
