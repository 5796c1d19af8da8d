"""entrycheck.paths on small hand-built graphs: reach and its filters, the boot path,
normal flow, chains, convergence and what each entry reaches before it."""

from __future__ import annotations

import pytest

from entrycheck.errors import EntrycheckError
from entrycheck.model import Edge, EdgeKind, EntryGraph, Node
from entrycheck.paths import PathRules, boot_path, chain, diverge, is_fault, normal_flow, reach

K = EdgeKind
# Addresses of the functions the graphs below use (names as in the kernel's boot).
A = {name: 0x1000 + 0x10 * i for i, name in enumerate([
    "startup_64", "startup_xen", "x86_64_start_kernel", "xen_start_kernel", "clear_bss",
    "x86_64_start_reservations", "start_kernel", "panic", "early_idt_handler_array",
    "kernel_init", "__warn_printk", "__kmalloc", "alt_helper", "initial_code_user",
    "native_only", "xen_only", "copy_bootdata", "helper",
])}
NAME = {a: n for n, a in A.items()}
RULES = PathRules(boot_ends=frozenset({A["start_kernel"]}), error_exits=frozenset({A["panic"]}),
                  noreturn=frozenset({A["x86_64_start_reservations"], A["start_kernel"],
                                      A["panic"]}),
                  reports=frozenset({A["__warn_printk"]}),
                  early_unavailable=frozenset({A["__kmalloc"]}))


def build(entry: str, root: str, edges: list[tuple], returns: set[str] = frozenset()) -> EntryGraph:
    """A graph from (caller, callee, kind[, condition[, storer]]) tuples."""
    nodes, succ = {}, {}
    for e in edges:
        for name in e[:2]:
            nodes.setdefault(A[name], Node(A[name], name, ".text", 64,
                                           returns=name in returns))
    nodes.setdefault(A[root], Node(A[root], root, ".text", 64))
    for site, (caller, callee, kind, *rest) in enumerate(edges):
        condition = rest[0] if rest else None
        storer = A[rest[1]] if len(rest) > 1 else None
        succ.setdefault(A[caller], {})[A[callee]] = Edge(kind, 0x9000 + site, "test",
                                                         condition=condition, storer=storer)
    return EntryGraph.build(entry, A[root], nodes, succ)


def names(addresses) -> set[str]:
    return {NAME[a] for a in addresses}


# native: startup_64 -> x86_64_start_kernel -> {clear_bss, copy_bootdata,
# x86_64_start_reservations -> start_kernel -> kernel_init (a thread)}, and the edges of
# other layers: an IDT handler, a WARN, panic, an allocation, an alternative
NATIVE = [
    ("startup_64", "x86_64_start_kernel", K.FAR),
    ("startup_64", "native_only", K.CALL),
    ("x86_64_start_kernel", "clear_bss", K.CALL),
    ("x86_64_start_kernel", "copy_bootdata", K.CALL),
    ("x86_64_start_kernel", "x86_64_start_reservations", K.CALL),
    ("x86_64_start_kernel", "early_idt_handler_array", K.EXCEPTION),
    ("x86_64_start_kernel", "__warn_printk", K.CALL),
    ("x86_64_start_kernel", "__kmalloc", K.CALL),
    ("x86_64_start_kernel", "alt_helper", K.ALTERNATIVE, "alternatives applied"),
    ("copy_bootdata", "panic", K.CALL),
    ("panic", "helper", K.CALL),
    ("x86_64_start_reservations", "start_kernel", K.CALL),
    ("start_kernel", "kernel_init", K.CALLBACK),
]
XEN = [
    ("startup_xen", "xen_start_kernel", K.JUMP),
    ("xen_start_kernel", "xen_only", K.CALL),
    ("xen_start_kernel", "clear_bss", K.CALL),
    ("xen_start_kernel", "x86_64_start_reservations", K.CALL),
    ("x86_64_start_reservations", "start_kernel", K.CALL),
]


@pytest.fixture
def native() -> EntryGraph:
    return build("native", "startup_64", NATIVE, returns={"clear_bss", "copy_bootdata"})


@pytest.fixture
def xen() -> EntryGraph:
    return build("xen-pv", "startup_xen", XEN, returns={"clear_bss", "xen_only"})


def test_reach_everything(native):
    assert names(reach(native, [native.root])) == {e[1] for e in NATIVE} | {"startup_64"}


def test_reach_blocked_is_reached_not_expanded(native):
    got = names(reach(native, [native.root], blocked=frozenset({A["panic"]})))
    assert "panic" in got and "helper" not in got


def test_reach_filters(native):
    root = [native.root]
    no_exc = names(reach(native, root, skip_kinds=frozenset({K.EXCEPTION})))
    assert "early_idt_handler_array" not in no_exc and "clear_bss" in no_exc
    no_callee = names(reach(native, root, skip_callees=frozenset({A["copy_bootdata"]})))
    assert not {"copy_bootdata", "panic", "helper"} & no_callee
    assert "alt_helper" not in names(reach(native, root, unconditional=True))
    within = {A["startup_64"], A["x86_64_start_kernel"], A["clear_bss"]}
    assert names(reach(native, root, within=within)) == names(within)


def test_reach_waits_for_the_storer():
    """An edge whose target a store gave is followed once the storing function is
    reached: `xen_only` (run later, by a callback) stores too late, `helper` in time."""
    graph = build("e", "startup_64", [
        ("startup_64", "helper", K.CALL),
        ("startup_64", "initial_code_user", K.CALL),
        ("startup_64", "xen_only", K.CALLBACK),
        ("initial_code_user", "native_only", K.OPS, None, "xen_only"),
        ("initial_code_user", "copy_bootdata", K.OPS, None, "helper"),
    ])
    root, callbacks = [graph.root], frozenset({K.CALLBACK})
    got = names(reach(graph, root, skip_kinds=callbacks, stored_on_path=True))
    assert "copy_bootdata" in got and "native_only" not in got
    assert "native_only" in names(reach(graph, root, skip_kinds=callbacks))
    # once the storer is reached, the edge held back is followed
    assert "native_only" in names(reach(graph, root, stored_on_path=True))


def test_boot_path_layers(native):
    path = names(boot_path(native, RULES))
    assert path == {"startup_64", "native_only", "x86_64_start_kernel", "clear_bss",
                    "copy_bootdata", "x86_64_start_reservations", "start_kernel", "panic"}
    # with the fault layer: the IDT handler and the WARN report, still not past panic
    faults = names(boot_path(native, RULES, with_faults=True)) - path
    assert faults == {"early_idt_handler_array", "__warn_printk"}


def test_normal_flow_goes_past_start_kernel(native):
    flow = names(normal_flow(native, RULES))
    assert {"kernel_init", "alt_helper", "__kmalloc", "start_kernel"} <= flow
    assert not {"early_idt_handler_array", "__warn_printk", "helper"} & flow


def test_is_fault(native):
    assert is_fault(Edge(K.EXCEPTION, 0, "t"), A["clear_bss"], RULES)
    assert is_fault(Edge(K.CALL, 0, "t"), A["panic"], RULES)
    assert is_fault(Edge(K.CALL, 0, "t"), A["__warn_printk"], RULES)
    assert not is_fault(Edge(K.CALL, 0, "t"), A["clear_bss"], RULES)


def test_chain_is_shortest_and_carries_edges(native):
    steps = chain(native, A["start_kernel"], RULES)
    assert [s.function for s in steps] == ["startup_64", "x86_64_start_kernel",
                                           "x86_64_start_reservations", "start_kernel"]
    assert steps[0].edge is None
    assert [s.edge.kind for s in steps[1:]] == [K.FAR, K.CALL, K.CALL]
    assert steps[1].as_json()["edge"]["kind"] == "far"


def test_chain_prefers_the_boot_path():
    """A shorter chain through a callback loses to the boot-path one."""
    graph = build("e", "startup_64", [
        ("startup_64", "kernel_init", K.CALLBACK),
        ("kernel_init", "clear_bss", K.CALL),
        ("startup_64", "x86_64_start_kernel", K.CALL),
        ("x86_64_start_kernel", "copy_bootdata", K.CALL),
        ("copy_bootdata", "clear_bss", K.CALL),
    ])
    assert [s.function for s in chain(graph, A["clear_bss"], RULES)] == [
        "startup_64", "x86_64_start_kernel", "copy_bootdata", "clear_bss"]


def test_chain_into_the_fault_layer_and_past_error_exits(native):
    assert [s.function for s in chain(native, A["early_idt_handler_array"], RULES)] == [
        "startup_64", "x86_64_start_kernel", "early_idt_handler_array"]
    # helper is reached only through panic (an error exit): the chain still shows it
    assert [s.function for s in chain(native, A["helper"], RULES)][-2:] == ["panic", "helper"]


def test_chain_to_an_unreached_function(native):
    with pytest.raises(EntrycheckError, match="does not reach 0x"):
        chain(native, A["xen_only"], RULES)


def test_convergence_and_both_sides(native, xen):
    div = diverge(xen, native, RULES)
    assert (div.entry, div.reference) == ("xen-pv", "native")
    # clear_bss is shared but returns into entry-only code: no join
    assert names(div.convergence) == {"x86_64_start_reservations"}
    assert names(div.reference_only) == {"startup_64", "native_only", "x86_64_start_kernel",
                                         "copy_bootdata", "panic"}
    assert names(div.entry_only) == {"startup_xen", "xen_start_kernel", "xen_only"}


def test_convergence_at_the_root():
    """An entry whose root the reference reaches joins at once (pvh at startup_64)."""
    pvh = build("pvh", "x86_64_start_kernel", [
        ("x86_64_start_kernel", "x86_64_start_reservations", K.CALL),
        ("x86_64_start_reservations", "start_kernel", K.CALL)])
    native = build("native", "startup_64", NATIVE, returns={"clear_bss", "copy_bootdata"})
    div = diverge(pvh, native, RULES)
    assert names(div.convergence) == {"x86_64_start_kernel"}
    assert names(div.reference_only) == {"startup_64", "native_only"}
    assert div.entry_only == []


def test_no_convergence_through_fault_or_conditional_edges(native):
    """Paths that meet only in an exception handler or patched-in code do not join."""
    other = build("other", "startup_xen", [
        ("startup_xen", "early_idt_handler_array", K.EXCEPTION),
        ("startup_xen", "alt_helper", K.CALL, "a static key enabled")])
    assert diverge(other, native, RULES).convergence == []
