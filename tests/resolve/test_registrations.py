"""entrycheck.resolve.registrations: a struct handed to a call by address holds functions
reached through that call (sample: `__static_call_update(&__SCK__early_hook, ...)`: the
key's initializer holds default_early_hook)."""

from __future__ import annotations

from entrycheck.model import EdgeKind
from entrycheck.resolve.registrations import Registrations


def test_struct_argument_reaches_its_functions(built):
    link, = built.links(Registrations, "xen_start_kernel")
    key = built.image.symbol_address("__SCK__early_hook")
    assert (link.target, link.kind, link.slot) == (built.addr("default_early_hook"),
                                                   EdgeKind.REGISTRATION, key)
    assert link.via == "__static_call_update(&__SCK__early_hook)"
    assert built.image.read_pointer(key) == built.addr("default_early_hook")


def test_edge_in_the_xen_graph(built, graphs):
    edge = built.edge(graphs["xen-pv"], "xen_start_kernel", "default_early_hook")
    assert (edge.kind, edge.resolver) == (EdgeKind.REGISTRATION, "registrations")
    assert built.links(Registrations, "early_cpu_init") == []
