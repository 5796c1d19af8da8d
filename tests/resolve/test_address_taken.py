"""entrycheck.resolve.address_taken: a function whose address a reached function takes and
hands on is a (weak) callback; another resolver's edge between the same pair wins."""

from __future__ import annotations

from entrycheck.model import EdgeKind
from entrycheck.resolve.address_taken import AddressTaken


def test_addresses_taken(built):
    links = built.links(AddressTaken, "xen_start_kernel")
    assert {(built.functions.at(ln.target).name, ln.kind, ln.text) for ln in links} == {
        ("__SCT__early_hook", EdgeKind.CALLBACK, "takes the address of __SCT__early_hook"),
        ("xen_early_hook", EdgeKind.CALLBACK, "takes the address of xen_early_hook")}
    assert AddressTaken.weak


def test_weak_edge_gives_way(built, graphs):
    """xen_start_kernel passes xen_early_hook to static_call_update(): the static-call
    resolver's edge (made during the walk) replaces the weak callback of the plan."""
    func = built.func("xen_start_kernel")
    plan = built.builder.plan(func, 64, func.start)
    weak = [s for s in plan.steps if s.callee.name == "xen_early_hook"]
    edges = built.builder.edges
    assert [(edges.edge(s.eid).resolver, s.weak) for s in weak] == [("address-taken", True)]
    edge = built.edge(graphs["xen-pv"], "xen_start_kernel", "xen_early_hook")
    assert (edge.kind, edge.resolver) == (EdgeKind.OPS, "static-calls")
    # xen_start_kernel's, and idt_setup_early_handler's lea of the handlers (the IDT edge wins)
    assert graphs["xen-pv"].resolved["address-taken"] == 2


def test_a_callback_runs_in_the_images_width(built, graphs):
    """pvh_start_xen, decoded from its 32-bit start, takes xen_prepare_pvh's address in its
    64-bit part: the callback is 64-bit code, and no walk decodes it as 32-bit (on Debian's
    7.2 that mistake decoded 8,500 functions a second time, as 32-bit garbage)."""
    links = built.links(AddressTaken, "pvh_start_xen", mode=32)
    assert {(built.functions.at(ln.target).name, ln.mode) for ln in links} == {
        ("xen_prepare_pvh", 64)}
    decoded_32 = {built.functions.at(start).name
                  for start, mode, _ in built.builder._plans if mode == 32}
    assert decoded_32 == {"pvh_start_xen"}


def test_the_image_base_is_no_callback(built, graphs):
    """`mov $_pa(startup_64), %rax` is the image's base (`_text`): no callback edge to the
    head code; pvh_start_xen's `jmp *%rax` still reaches startup_64 (registers)."""
    assert built.image.symbol_address("_text") == built.addr("startup_64")
    edge = built.edge(graphs["pvh"], "pvh_start_xen", "startup_64")
    assert edge.resolver == "registers"
    assert all(built.functions.at(ln.target).name != "startup_64"
               for name in ("pvh_start_xen", "setup_arch", "xen_start_kernel")
               for ln in built.links(AddressTaken, name, mode=32 if name == "pvh_start_xen"
                                     else 64))
