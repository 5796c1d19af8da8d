"""entrycheck.queries on the sample kernel's analysis: scopes, reach figures, skip, why,
validate and the dynamic diff against (synthetic) traces."""

from __future__ import annotations

from dataclasses import replace

import pytest

from entrycheck import queries
from entrycheck.analysis import analyse
from entrycheck.errors import EntrycheckError
from entrycheck.model import EntryGraph, Pruned
from entrycheck.trace.mapping import TraceResult


@pytest.fixture(scope="module")
def complete(sample):
    return analyse(sample, complete=True)


@pytest.fixture(scope="module")
def boot(sample):
    return analyse(sample)


def names(result: dict, key: str) -> list[str]:
    return [f["name"] for f in result[key]]


def test_scopes(complete, boot, expected):
    graph = complete.graph("native")
    early = {graph.name(a) for a in queries.in_scope(complete, graph, "early")}
    init = {graph.name(a) for a in queries.in_scope(complete, graph, "init")}
    everything = {graph.name(a) for a in queries.in_scope(complete, graph, "all")}
    assert everything == set(expected["reach"]["native"])
    assert init <= early <= everything
    assert "rest_init" not in early and "start_kernel" in early  # the boot path ends there
    assert all(graph.nodes[a].init for a in queries.in_scope(complete, graph, "init"))
    # patched-in code does not run on the boot path as linked
    assert not early & set(expected["patched_later"])
    with pytest.raises(ValueError, match="complete analysis"):
        queries.in_scope(boot, boot.graph("native"), "all")


def test_reach_figures(complete, expected):
    out = queries.reach(complete, "native", "all")
    assert names(out, "reached") == expected["reach"]["native"]  # sorted by name
    assert out["total_reached"] == len(expected["reach"]["native"])
    # indirect edges of the native sample: the IDT handler, the register call through
    # the thunk, the pv_ops slot, early_con's registration and the hypervisors[] data
    # object's callback (a far return is drawn as direct); unresolved: run_init_process's
    # `call rdi` and init_hypervisor_platform's call through the structs
    assert out["indirect"] == {"resolved": 5, "unresolved": 2, "share_resolved": 0.7143}
    assert out["unresolved_by_reason"] == {
        "the register's value is not a constant known here": 1,
        "the target is read from memory addressed by registers": 1}
    assert out["resolvers"]["far"] == 1 and out["resolvers"]["direct"] > 10


@pytest.mark.parametrize("entry", ["xen-pv", "pvh"])
def test_skip_grows_only_by_native_only_helpers(complete, expected, entry):
    """The boot-path skip list (--scope early) is the expected one and grows over the
    init-only one only by code outside the init sections."""
    out = queries.skip(complete, entry, "native", "early")
    assert names(out, "skipped") == expected["skip_early"][entry]
    assert out["convergence"] == expected["convergence"][entry]
    assert set(expected["skip"][entry]) <= set(expected["skip_early"][entry])
    grown = [f for f in out["skipped"] if f["name"] not in expected["skip"][entry]]
    assert all(not f["init"] for f in grown)
    for f in out["skipped"]:
        assert f["chain"][0] == "startup_64" and f["chain"][-1] == f["name"]


def test_why_fills_in_the_instruction(complete, expected):
    out = queries.why(complete, "native", "x86_64_start_kernel")
    assert out["chain"] == expected["why"]["native"]["x86_64_start_kernel"]
    far = out["links"][-1]["edge"]
    assert (far["kind"], far["instruction"]) == ("far", "data64 ret far")  # lretq


def test_why_unknown_and_unreached(complete):
    # with DWARF, a name no symbol has may be an inlined helper: looked for there too
    with pytest.raises(EntrycheckError, match="does not reach x86_64_start_kernal, not even "
                                              "inlined"):
        queries.why(complete, "native", "x86_64_start_kernal")
    out = queries.why(complete, "native", "xen_start_kernel")  # an answer, not an error
    assert not out["reached"] and out["chain"] == []
    xen_pv = next(o for o in out["others"] if o["entry"] == "xen-pv")
    assert xen_pv["chain"] == ["startup_xen", "xen_start_kernel"]
    assert "parts_at" not in xen_pv  # only through Xen PV's own functions


def test_why_not_names_where_the_entries_part(complete):
    out = queries.why(complete, "xen-pv", "native_write_cr4")
    native = next(o for o in out["others"] if o["entry"] == "native")
    assert native["chain"][0] == "startup_64" and native["chain"][-1] == "native_write_cr4"
    assert (native["parts_at"], native["then"]) == ("setup_arch", ["native_write_cr4"])
    assert native["edge"] == {"kind": "indirect-slot", "via": "pv_ops"}
    assert "cut_by" not in native
    # an edge the entry's boot facts cut is named with the fact
    graph = complete.graph("xen-pv")
    setup_arch, target = (complete.names.find(n) for n in ("setup_arch", "native_write_cr4"))
    cut = Pruned(setup_arch, target, target, setup_arch + 4, "xen_domain_type is 1")
    pruned = EntryGraph(graph.entry, graph.root, graph.table, pruned=[cut])
    facts = replace(complete, graphs={**complete.graphs, "xen-pv": pruned})
    native = next(o for o in queries.why(facts, "xen-pv", "native_write_cr4")["others"]
                  if o["entry"] == "native")
    assert native["cut_by"] == "xen_domain_type is 1"


def trace(complete, entry: str, ran: list[str]) -> TraceResult:
    graph = complete.graph(entry)
    addresses = {graph.name(a): a for a in graph.nodes}
    addresses["not_in_the_graph"] = 0x10
    return TraceResult(functions=ran, addresses={n: addresses[n] for n in ran},
                       first_index={n: i for i, n in enumerate(ran)}, until="start_kernel",
                       entry=entry, build_id=complete.build_id)


def test_validate_names_where_the_path_was_lost(complete):
    ran = ["startup_64", "common_startup_64", "x86_64_start_kernel", "not_in_the_graph",
           "start_kernel"]
    out = queries.validate(complete, trace(complete, "native", ran), "native")
    assert (out["inside"], out["share_inside"], out["same_build"]) == (4, 0.8, True)
    assert out["missing"] == [{"function": "not_in_the_graph", "after": "x86_64_start_kernel",
                               "lost": "a transfer from code the graph does not reach",
                               "physical": False}]
    assert out["precision"]["scope"] == "boot path"
    assert out["precision"]["traced"] == len(ran)


def test_validate_refuses_another_entry(complete):
    with pytest.raises(EntrycheckError, match="not of native"):
        queries.validate(complete, trace(complete, "pvh", ["pvh_start_xen"]), "native")


def test_dynamic_diff(complete):
    skip = queries.skip(complete, "pvh", "native", "early")
    pvh = trace(complete, "pvh", ["pvh_start_xen", "xen_prepare_pvh", "startup_64",
                                  "start_kernel"])
    native = trace(complete, "native", ["startup_64", "start_kernel"])
    out = queries.dynamic_diff(skip, pvh, native)
    assert out["entry_only"] == ["pvh_start_xen", "xen_prepare_pvh"]
    assert out["reference_only"] == [] and out["static_skipped_that_ran"] == []
    assert out["entry_only_static_that_ran"] == ["pvh_start_xen", "xen_prepare_pvh"]
