"""Native-only features as roots: the functions a rule flags, grouped under the flagged
function that leads to them on the reference entry's graph, so that one feature
(`sme_encrypt_kernel` and its page-table helpers, `load_ucode_bsp` and the vendor loaders)
is one finding, fingerprinted on its root, with its callees listed.

A flagged function is a root when no other flagged function leads to it; the members of a
root are the flagged functions it reaches through flagged functions only, along the edges
the boot path follows (no fault-layer or deferred edges, no edges under a condition). A
function two roots reach is a member of both. In a cycle with no way in, the
lowest-addressed function stands for the rest.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

from entrycheck.model import DEFERRED_KINDS, FAULT_KINDS, EntryGraph

_SKIPPED = FAULT_KINDS | DEFERRED_KINDS


@dataclass(frozen=True)
class Root:
    """A flagged function no other flagged function leads to, and what it leads to."""

    address: int
    members: frozenset[int]  # flagged functions reached through flagged ones, itself excluded


def group(graph: EntryGraph, flagged: Iterable[int],
          heads: Iterable[int] | None = None) -> list[Root]:
    """The roots among `heads` (default: every flagged function), in address order; reach
    runs through `flagged`, which should hold the heads."""
    inside = {a for a in flagged if a in graph}
    candidates = sorted(inside if heads is None else {a for a in heads if a in inside})
    succ = _inner_edges(graph, inside)
    reached = {a: _reach(succ, a) for a in candidates}
    wanted = set(candidates)
    ways_in = {a: sum(1 for b in candidates if b != a and a in reached[b]) for a in candidates}
    covered: set[int] = set()
    roots = []
    for a in sorted(candidates, key=lambda a: (ways_in[a], a)):
        if a in covered:
            continue
        roots.append(Root(a, frozenset(reached[a] - {a})))
        covered |= reached[a] & wanted
    return sorted(roots, key=lambda r: r.address)


def _inner_edges(graph: EntryGraph, inside: set[int]) -> dict[int, list[int]]:
    """The edges between flagged functions that the boot path follows."""
    out: dict[int, list[int]] = {}
    for a in inside:
        out[a] = [b for b, edge in graph.succ.get(a, {}).items()
                  if b in inside and b != a and edge.kind not in _SKIPPED
                  and not edge.condition]
    return out


def _reach(succ: dict[int, list[int]], start: int) -> set[int]:
    seen = {start}
    queue = deque([start])
    while queue:
        for b in succ.get(queue.popleft(), ()):
            if b not in seen:
                seen.add(b)
                queue.append(b)
    return seen
