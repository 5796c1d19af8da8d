"""entrycheck.resolve.data_objects: the functions a data object holds whose address a
reached function takes (weak edges: a stronger resolver's edge between the pair wins)."""

from __future__ import annotations

from entrycheck.model import EdgeKind
from entrycheck.resolve.data_objects import DataObjects


def test_object_address_taken(built):
    key = built.image.symbol_address("__SCK__early_hook")
    link, = built.links(DataObjects, "xen_start_kernel")
    assert (link.target, link.kind, link.via, link.slot) == (
        built.addr("default_early_hook"), EdgeKind.REGISTRATION, "&__SCK__early_hook", key)
    assert link.text == "holds __SCK__early_hook"
    assert key in built.facts("xen_start_kernel").data_addrs


def test_registration_wins_over_the_weak_edge(built, graphs):
    edge = built.edge(graphs["xen-pv"], "xen_start_kernel", "default_early_hook")
    assert edge.resolver == "registrations"
    assert graphs["xen-pv"].resolved["data-objects"] == 1
