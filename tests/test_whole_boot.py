"""Whole-boot diffs on small hand-made graphs: each differing function by the point where
the graphs part, and the hook table."""

from __future__ import annotations

from entrycheck.model import Edge, EdgeKind, EntryGraph, Hook, Node
from entrycheck.paths import PathRules, Point, hook_table, normal_flow, whole_diff

NATIVE, XEN, SHARED, STATIC, STORED, XEN_HELPER, HANDLER, SLOT = 1, 2, 10, 20, 30, 40, 50, 100
RULES = PathRules(frozenset(), frozenset(), frozenset())


def _graph(entry: str, root: int, edges: dict[int, dict[int, Edge]], hooks: list[Hook]):
    names = {NATIVE: "startup_64", XEN: "startup_xen", SHARED: "setup_arch",
             STATIC: "default_setup", STORED: "xen_setup", XEN_HELPER: "xen_helper",
             HANDLER: "fault_handler"}
    used = {root} | set(edges) | {b for out in edges.values() for b in out}
    nodes = {a: Node(a, names[a], ".text", 64) for a in used}
    return EntryGraph.build(entry, root, nodes, edges, hooks=hooks)


def _pair():
    call = Edge(EdgeKind.CALL, 0, "direct")
    native = _graph("native", NATIVE, {
        NATIVE: {SHARED: call},
        SHARED: {STATIC: Edge(EdgeKind.SLOT, 0, "slots", via="ops.setup")},
    }, [Hook(SLOT, "ops.setup", SHARED, STATIC)])
    xen = _graph("xen-pv", XEN, {
        XEN: {SHARED: call, XEN_HELPER: call},
        SHARED: {STORED: Edge(EdgeKind.OPS, 0, "ops", via="ops.setup", storer=XEN),
                 HANDLER: Edge(EdgeKind.EXCEPTION, 0, "idt")},
    }, [Hook(SLOT, "ops.setup", SHARED, STORED, XEN)])
    return native, xen


def test_differences_by_divergence_point():
    native, xen = _pair()
    diff = whole_diff(xen, native, RULES)
    assert diff.reference_only == {NATIVE: Point("entry", "native"),
                                   STATIC: Point("hook", "ops.setup")}
    assert diff.entry_only == {XEN: Point("entry", "xen-pv"),
                               XEN_HELPER: Point("entry", "xen-pv"),
                               STORED: Point("hook", "ops.setup")}


def test_fault_layer_only_with_faults():
    native, xen = _pair()
    assert HANDLER not in whole_diff(xen, native, RULES).entry_only
    assert whole_diff(xen, native, RULES, with_faults=True).entry_only[HANDLER] == Point(
        "edge", "setup_arch -[exception]-> fault_handler")


def test_hook_table_lists_slots_whose_targets_differ():
    native, xen = _pair()
    flows = [normal_flow(g, RULES) for g in (xen, native)]
    assert hook_table([xen, native], flows) == {"ops.setup": {"xen-pv": [STORED],
                                                              "native": [STATIC]}}
    assert hook_table([native, native], [flows[1], flows[1]]) == {}


def test_sample_kernel_whole_boot_skip(capsys, sample):
    import json

    from entrycheck.cli import main

    assert main(["skip", str(sample), "--entry", "xen-pv", "--json"]) == 0
    whole = json.loads(capsys.readouterr().out)["whole_boot"]
    hooks = {h["slot"]: h["targets"] for h in whole["hooks"]}
    assert hooks["pv_ops"] == {"xen-pv": ["xen_write_cr4"], "native": ["native_write_cr4"]}
    groups = {(g["point"]["kind"], g["point"]["name"]): g for g in whole["groups"]}
    assert groups["hook", "pv_ops"]["reference_only"] == ["native_write_cr4"]
    assert groups["hook", "pv_ops"]["entry_only"] == ["xen_write_cr4"]
    assert "kasan_early_init" in groups["entry", "native"]["reference_only"]
    assert "xen_start_kernel" in groups["entry", "xen-pv"]["entry_only"]


def test_report_carries_the_whole_boot_diff(sample, tmp_path):
    import json

    from entrycheck.analysis import analyse
    from entrycheck.report.html import write_report

    analysis = analyse(sample, cache_dir=tmp_path / "cache", complete=True)
    write_report(analysis, tmp_path / "out")
    data = json.loads((tmp_path / "out" / "report.json").read_text())
    hooks = {h["slot"]: h["targets"] for h in data["skips"]["xen-pv"]["whole_boot"]["hooks"]}
    assert hooks["pv_ops"]["xen-pv"] == ["xen_write_cr4"]
    assert "hook-table" in (tmp_path / "out" / "index.html").read_text()
