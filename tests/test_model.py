"""entrycheck.model: every edge kind has a style, graphs pack into arrays and come back
unchanged (through the cache's blobs too), edges and unresolved sites as JSON."""

from __future__ import annotations

from entrycheck.model import (
    EDGE_STYLES,
    KIND_CODES,
    Edge,
    EdgeKind,
    EdgeTable,
    EntryGraph,
    Function,
    GraphTable,
    Node,
    Strings,
    Unresolved,
)

ROOT, MID, LEAF, GONE = 0x1000, 0x2000, 0x3000, 0x4000


def sample_graph() -> EntryGraph:
    nodes = {
        ROOT: Node(ROOT, "startup_64", ".head.text", 64, init=True),
        MID: Node(MID, "x86_64_start_kernel", ".init.text", 64, refs=("boot_params",),
                  privileged=("mov cr4, rax",)),
        LEAF: Node(LEAF, "early_idt_handler_array", ".init.text", 64, "compressed",
                   returns=True),
    }
    succ = {
        ROOT: {MID: Edge(EdgeKind.FAR, ROOT + 0x20, "far", via="initial_code"),
               GONE: Edge(EdgeKind.CALL, ROOT + 0x30, "direct")},  # no such node: dropped
        MID: {LEAF: Edge(EdgeKind.EXCEPTION, MID + 4, "idt", "installs it",
                         condition="alternatives applied", storer=ROOT),
              ROOT: Edge(EdgeKind.JUMP, MID + 8, "direct")},
    }
    return EntryGraph.build("native", ROOT, nodes, succ,
                            unresolved=[Unresolved(MID, MID + 12, "call rax", "unknown")],
                            resolved={"far": 1, "idt": 1})


def test_every_kind_has_a_style():
    assert set(EDGE_STYLES) == set(EdgeKind)
    assert tuple(EdgeKind) == KIND_CODES
    faults = {k for k, s in EDGE_STYLES.items() if s.fault}
    deferred = {k for k, s in EDGE_STYLES.items() if s.deferred}
    assert faults == {EdgeKind.EXCEPTION, EdgeKind.ERROR_PATH}
    assert deferred == {EdgeKind.CALLBACK, EdgeKind.REGISTRATION}


def test_graph_views():
    g = sample_graph()
    assert list(g.nodes) == [ROOT, MID, LEAF] and len(g.nodes) == 3
    assert ROOT in g and GONE not in g and GONE not in g.nodes
    assert g.nodes[LEAF] == Node(LEAF, "early_idt_handler_array", ".init.text", 64,
                                 "compressed", returns=True)
    assert g.nodes[MID].refs == ("boot_params",)
    assert g.nodes[MID].privileged == ("mov cr4, rax",)
    assert g.nodes[ROOT].init and not g.nodes[ROOT].returns
    assert g.succ[ROOT] == {MID: Edge(EdgeKind.FAR, ROOT + 0x20, "far", via="initial_code")}
    assert g.succ[MID][LEAF] == Edge(EdgeKind.EXCEPTION, MID + 4, "idt", "installs it",
                                     condition="alternatives applied", storer=ROOT)
    assert g.succ[LEAF] == {}
    assert g.name(MID) == "x86_64_start_kernel"


def test_briefs_by_name_then_address():
    """Many nodes are read in the table's name order, a few are sorted: the same order."""
    names = ["b", "a", "c", "a"] * 20
    nodes = {0x1000 + 16 * i: Node(0x1000 + 16 * i, n, ".text", 64)
             for i, n in enumerate(names)}
    g = EntryGraph.build("native", 0x1000, nodes, {})
    everything = g.briefs(set(nodes))
    assert [(n, a) for n, a, _, _ in everything] == sorted((n, a) for a, n in
                                                          zip(nodes, names, strict=True))
    few = {0x1000 + 16 * 3, 0x1000 + 16 * 1, 0x1000 + 16 * 2}
    assert g.briefs(few) == [row for row in everything if row[1] in few]
    assert g.briefs(frozenset()) == []


def test_adjacency_arrays():
    g = sample_graph()
    index, addresses, offsets, dst, kind, cond = g.adjacency()
    assert index == {ROOT: 0, MID: 1, LEAF: 2}
    assert list(addresses) == [ROOT, MID, LEAF] and list(offsets) == [0, 1, 3, 3]
    assert list(dst) == [1, 0, 2]  # per caller, callees in address order
    assert [KIND_CODES[k] for k in kind] == [EdgeKind.FAR, EdgeKind.JUMP, EdgeKind.EXCEPTION]
    assert list(cond) == [0, 0, 1]
    assert list(g.storers()) == [-1, -1, 0]


def test_edges_listed():
    assert [(a, b, e.kind) for a, b, e in sample_graph().edges()] == [
        (ROOT, MID, EdgeKind.FAR), (MID, ROOT, EdgeKind.JUMP), (MID, LEAF, EdgeKind.EXCEPTION)]


def test_blobs_round_trip():
    g = sample_graph()
    edge_blobs, blobs = g.table.edges.blobs(), g.table.blobs()
    edges = EdgeTable.from_blobs(Strings(g.table.edges.strings.items), edge_blobs,
                                 len(g.table.edges))
    back = EntryGraph("native", ROOT, GraphTable.from_blobs(edges, blobs))
    assert {a: back.nodes[a] for a in back.nodes} == {a: g.nodes[a] for a in g.nodes}
    assert list(back.edges()) == list(g.edges())
    assert list(back.storers()) == list(g.storers())


def test_entries_share_one_edge_table():
    """Two graphs built on one EdgeTable number their edges in it; each graph's arrays
    point only at its own edges."""
    edges = EdgeTable()
    a = Node(ROOT, "a", ".text", 64)
    b = Node(MID, "b", ".text", 64)
    first = EntryGraph.build("one", ROOT, {ROOT: a, MID: b},
                             {ROOT: {MID: Edge(EdgeKind.CALL, ROOT + 1, "direct")}}, edges)
    second = EntryGraph.build("two", ROOT, {ROOT: a, MID: b},
                              {ROOT: {MID: Edge(EdgeKind.JUMP, ROOT + 2, "direct")}}, edges)
    assert len(edges) == 2
    assert first.succ[ROOT][MID].kind == EdgeKind.CALL
    assert second.succ[ROOT][MID].kind == EdgeKind.JUMP
    assert first.table.edges is second.table.edges


def test_edge_and_unresolved_json():
    edge = Edge(EdgeKind.OPS, 0xFFFFFFFF81000010, "ops", "call qword ptr [rip+0x10]",
                "pv_ops+0x8 (stored by xen_start_kernel)", "a static key enabled")
    assert edge.as_json() == {"kind": "indirect-ops", "site": "0xffffffff81000010",
                              "instruction": "call qword ptr [rip+0x10]", "resolver": "ops",
                              "via": "pv_ops+0x8 (stored by xen_start_kernel)",
                              "condition": "a static key enabled"}
    assert Edge(EdgeKind.CALL, 0x10, "direct").as_json() == {
        "kind": "call", "site": "0x10", "instruction": "", "resolver": "direct"}
    assert Unresolved(1, 0x20, "call rax", "why").as_json("f") == {
        "function": "f", "site": "0x20", "instruction": "call rax", "reason": "why"}


def test_function_size():
    assert Function("f", 0x1000, 0x1040, ".text").size == 0x40


def test_a_loaded_edge_table_takes_new_edges():
    """An edge table read back from its blobs (as from the cache) can still number new
    edges (a splice joins graphs): old and new edges keep their kinds and conditions."""
    g = sample_graph()
    blobs = g.table.edges.blobs()  # interns the edges' strings: before the strings are read
    loaded = EdgeTable.from_blobs(Strings(g.table.edges.strings.items), blobs,
                                  len(g.table.edges))
    n = loaded.add(EdgeKind.HANDOFF, 0x99, "handoff", condition="alternatives applied")
    assert loaded.edge(n).kind == EdgeKind.HANDOFF and loaded.kind_code(0) == KIND_CODES.index(
        g.table.edges.edge(0).kind)
    kinds, conds = loaded.codes(list(range(len(loaded))))
    assert conds == [e.condition is not None for e in map(loaded.edge, range(len(loaded)))]
    assert kinds[n] == KIND_CODES.index(EdgeKind.HANDOFF) and conds[n]
