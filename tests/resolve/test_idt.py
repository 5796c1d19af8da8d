"""entrycheck.resolve.idt: the handlers a function installs (knowledge `installs`) are
entered on a fault: idt_setup_early_handler -> early_idt_handler_array."""

from __future__ import annotations

from entrycheck.model import EdgeKind
from entrycheck.resolve.idt import Idt


def test_installs(built, graphs):
    link, = built.links(Idt, "idt_setup_early_handler")
    assert (link.target, link.kind, link.text) == (built.addr("early_idt_handler_array"),
                                                   EdgeKind.EXCEPTION,
                                                   "installs early_idt_handler_array")
    assert built.links(Idt, "x86_64_start_kernel") == []
    for entry, graph in graphs.items():
        edge = built.edge(graph, "idt_setup_early_handler", "early_idt_handler_array")
        assert (edge.kind, edge.resolver) == (EdgeKind.EXCEPTION, "idt"), entry
