"""entrycheck.resolve.slots: `call *slot` through a data slot whose static contents are a
code address (sample setup_arch's `pv_ops.cpu.write_cr4(...)`)."""

from __future__ import annotations

from entrycheck.model import EdgeKind
from entrycheck.resolve.slots import Slots


def test_slot_gives_the_static_target(built, expected):
    link, = built.links(Slots, "setup_arch")
    pv_ops = built.image.symbol_address(expected["ops_table"]["symbol"])
    assert (link.target, link.kind, link.slot) == (built.addr("native_write_cr4"),
                                                   EdgeKind.SLOT, pv_ops)
    assert link.via == "pv_ops"  # write_cr4 is the first member
    assert built.image.read_pointer(pv_ops) == built.addr("native_write_cr4")


def test_native_calls_the_static_target(built, graphs):
    edge = built.edge(graphs["native"], "setup_arch", "native_write_cr4")
    assert (edge.kind, edge.resolver, edge.via) == (EdgeKind.SLOT, "slots", "pv_ops")
