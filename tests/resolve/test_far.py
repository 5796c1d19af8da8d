"""entrycheck.resolve.far: startup_64's `lretq` through the address `initial_code` holds
(pushed from the slot), into x86_64_start_kernel."""

from __future__ import annotations

from entrycheck.model import EdgeKind, How
from entrycheck.resolve.far import Far


def test_far_return_through_initial_code(built):
    link, = built.links(Far, "common_startup_64")
    assert (link.target, link.kind, link.via) == (built.addr("x86_64_start_kernel"),
                                                  EdgeKind.FAR, "initial_code")
    site, = [s for s in built.facts("common_startup_64").sites if s.how == How.STACK]
    assert site.slot == built.image.symbol_address("initial_code")
    assert built.image.read(site.address, 2) == b"\x48\xcb"  # lretq


def test_far_edge_in_every_native_path(built, graphs):
    for entry in ("native", "pvh"):
        edge = built.edge(graphs[entry], "common_startup_64", "x86_64_start_kernel")
        assert (edge.kind, edge.resolver) == (EdgeKind.FAR, "far")
