"""entrycheck.resolve.data_objects: the functions a data object holds whose address a
reached function takes, and those of the objects it points to (weak edges: a stronger
resolver's edge between the pair wins)."""

from __future__ import annotations

from entrycheck.model import EdgeKind
from entrycheck.resolve.data_objects import DataObjects


def test_an_array_of_struct_pointers_two_levels_deep(built):
    """setup_arch loads `hypervisors` (an array of pointers to structs of callbacks)."""
    links = {built.functions.at(ln.target).name: ln for ln in built.links(DataObjects,
                                                                          "setup_arch")}
    detect = links["detect_sample_hypervisor"]
    assert (detect.kind, detect.via, detect.slot) == (
        EdgeKind.REGISTRATION, "&hypervisors", built.image.symbol_address("sample_hypervisor"))
    assert detect.text == "holds sample_hypervisor"
    assert built.image.symbol_address("hypervisors") in built.facts("setup_arch").data_addrs


def test_registration_wins_over_the_weak_edge(built, graphs):
    """setup_arch also loads `&early_con`: the data-objects edge to early_con_write is weak,
    and the registrations resolver's edge (register_console(&early_con)) replaces it."""
    assert "early_con_write" in {built.functions.at(ln.target).name
                                 for ln in built.links(DataObjects, "setup_arch")}
    edge = built.edge(graphs["native"], "setup_arch", "early_con_write")
    assert edge.resolver == "registrations"
    edge = built.edge(graphs["native"], "setup_arch", "detect_sample_hypervisor")
    assert edge.resolver == "data-objects"


def test_a_static_call_key_is_no_data_object(built):
    assert built.links(DataObjects, "xen_start_kernel") == []
