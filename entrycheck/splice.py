"""Whole boot chains across images: the compressed kernel's graphs joined to the vmlinux's.

The compressed kernel (EFI stub, decompressor) ends in a register jump into the freshly
decompressed vmlinux; that jump becomes a `handoff` edge to the vmlinux's native entry, so
a path runs from firmware entry to start_kernel. Compressed-image functions whose names
the vmlinux also has (startup_64, memcpy) are renamed `compressed:NAME`.
"""

from __future__ import annotations

from dataclasses import replace

import networkx as nx

from entrycheck.analysis import Analysis
from entrycheck.errors import EntrycheckError
from entrycheck.graph import Edge, EntryGraph
from entrycheck.model import EdgeKind

PREFIX = "compressed:"


def splice(compressed: Analysis, kernel: Analysis) -> Analysis:
    """One analysis holding the kernel's entries and the compressed entries, the latter
    followed through the handoff into the kernel's native path."""
    reference = kernel.knowledge.reference
    if reference not in kernel.graphs:
        raise EntrycheckError(f"{kernel.image}: no {reference} entry to hand off to")
    native = kernel.graphs[reference]
    graphs = dict(kernel.graphs)
    for name, graph in compressed.graphs.items():
        graphs[name] = _join(graph, native)
    return replace(kernel, entries=[*kernel.entries, *compressed.entries], graphs=graphs,
                   functions=kernel.functions | {PREFIX + f for f in compressed.functions})


def _join(graph: EntryGraph, native: EntryGraph) -> EntryGraph:
    kernel_graph = native.graph
    rename = {n: PREFIX + n if n in kernel_graph else n for n in graph.graph}
    joined = nx.relabel_nodes(graph.graph, rename, copy=True)
    for node in joined:
        joined.nodes[node]["image"] = "compressed"
    if graph.handoffs:
        joined.add_nodes_from(kernel_graph.nodes(data=True))
        joined.add_edges_from(kernel_graph.edges(data=True))
        for hand in graph.handoffs:
            edge = Edge(EdgeKind.HANDOFF, hand.site, hand.text, "the decompressed vmlinux")
            joined.add_edge(rename[hand.function], native.root, edge=edge)
    unresolved = [u._replace(function=rename[u.function]) for u in graph.unresolved]
    if graph.handoffs:
        unresolved += native.unresolved
    return EntryGraph(graph.entry, rename[graph.root], joined, unresolved, graph.handoffs)
