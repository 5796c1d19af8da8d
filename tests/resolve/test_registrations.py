"""entrycheck.resolve.registrations: a struct handed to a call by address holds functions
reached through that call (sample: `register_console(&early_con)` in setup_arch: the
struct's initializer holds early_con_write); a static call's key handed to its update is no
such struct."""

from __future__ import annotations

from entrycheck.model import EdgeKind
from entrycheck.resolve.registrations import Registrations


def test_struct_argument_reaches_its_functions(built):
    link, = built.links(Registrations, "setup_arch")
    con = built.image.symbol_address("early_con")
    assert (link.target, link.kind, link.slot) == (built.addr("early_con_write"),
                                                   EdgeKind.REGISTRATION, con)
    assert link.via == "register_console(&early_con)"
    assert built.image.read_pointer(con) == built.addr("early_con_write")


def test_edge_in_every_graph(built, graphs):
    for graph in graphs.values():
        edge = built.edge(graph, "setup_arch", "early_con_write")
        assert (edge.kind, edge.resolver) == (EdgeKind.REGISTRATION, "registrations")
    assert built.links(Registrations, "early_cpu_init") == []


def test_a_static_call_key_registers_nothing(built, graphs):
    """xen_start_kernel hands `&__SCK__early_hook` to __static_call_update: the key holds
    the trampoline's default target, which the update replaces for Xen PV."""
    assert built.links(Registrations, "xen_start_kernel") == []
    assert "default_early_hook" not in built.reached(graphs["xen-pv"])
    assert "xen_early_hook" in built.reached(graphs["xen-pv"])
