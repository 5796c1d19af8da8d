"""entrycheck.resolve.registers: `jmp *%reg` with a constant in the register: the PVH
entry's 32-bit code loads physical addresses (`_pa(sym)`) and jumps through them."""

from __future__ import annotations

from entrycheck.model import EdgeKind
from entrycheck.resolve.registers import Registers


def test_pvh_register_jumps(built):
    links = built.links(Registers, "pvh_start_xen", mode=32)
    got = {(built.functions.at(ln.target).name, ln.kind) for ln in links}
    assert got == {("xen_prepare_pvh", EdgeKind.REGISTER), ("startup_64", EdgeKind.REGISTER)}
    assert built.resolver(Registers).decoder_options() == {}  # not a compressed kernel


def test_thunk_call_resolved_by_the_register(built):
    link, = built.links(Registers, "early_cpu_init")
    assert (link.target, link.kind, link.slot) == (built.addr("thunk_target_fn"),
                                                   EdgeKind.REGISTER, None)


def test_pvh_graph(built, graphs):
    pvh = graphs["pvh"]
    for callee in ("xen_prepare_pvh", "startup_64"):
        edge = built.edge(pvh, "pvh_start_xen", callee)
        assert (edge.kind, edge.resolver) == (EdgeKind.REGISTER, "registers")
    assert pvh.nodes[built.addr("startup_64")].mode == 64  # the jump is into long mode
