"""Whole boot chains across images: the compressed kernel's graphs joined to the vmlinux's.

The compressed kernel (EFI stub, decompressor) ends in a register jump into the freshly
decompressed vmlinux; that jump becomes a `handoff` edge to the vmlinux's native entry, so
a path runs from firmware entry to start_kernel. The compressed kernel is linked at 0 and
the vmlinux high, so their addresses never meet; compressed-image functions whose names
the vmlinux also has (startup_64, memcpy) are shown as `compressed:NAME`.
"""

from __future__ import annotations

from dataclasses import replace

from entrycheck.analysis import Analysis
from entrycheck.binary.functions import NameIndex
from entrycheck.errors import EntrycheckError
from entrycheck.model import Edge, EdgeKind, EntryGraph
from entrycheck.paths import PathRules

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
    names = {**kernel.names.by_name}
    for name, addrs in compressed.names.by_name.items():
        key = PREFIX + name if name in names else name
        names[key] = names.get(key, []) + addrs
    index = NameIndex(names, {**kernel.names.files, **compressed.names.files}, kernel.image)
    a, b = kernel.rules, compressed.rules
    rules = PathRules(a.boot_ends | b.boot_ends, a.error_exits | b.error_exits,
                      a.noreturn | b.noreturn, a.reports | b.reports,
                      a.early_unavailable | b.early_unavailable)
    return replace(kernel, entries=[*kernel.entries, *compressed.entries], graphs=graphs,
                   names=index, path_rules=rules,
                   warnings=[*kernel.warnings, *(f"{compressed.image}: {w}"
                                                 for w in compressed.warnings)])


def _join(graph: EntryGraph, native: EntryGraph) -> EntryGraph:
    kernel_names = {n.name for n in native.nodes.values()}
    nodes = {}
    for addr, node in graph.nodes.items():
        if addr in native.nodes:
            raise EntrycheckError(f"the compressed kernel and the vmlinux both have code at "
                                  f"{addr:#x}: not one build")
        name = PREFIX + node.name if node.name in kernel_names else node.name
        nodes[addr] = replace(node, name=name, image="compressed")
    succ = {a: dict(out) for a, out in graph.succ.items()}
    unresolved = list(graph.unresolved)
    if graph.handoffs:
        nodes.update(native.nodes)
        succ.update({a: dict(out) for a, out in native.succ.items()})
        for hand in graph.handoffs:
            succ.setdefault(hand.function, {})[native.root] = Edge(
                EdgeKind.HANDOFF, hand.site, "handoff", hand.text, "the decompressed vmlinux")
        unresolved += native.unresolved
    resolved = dict(graph.resolved)
    return EntryGraph.build(graph.entry, graph.root, nodes, succ, unresolved=unresolved,
                            resolved=resolved, handoffs=graph.handoffs)
