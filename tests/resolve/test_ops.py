"""entrycheck.resolve.ops: what an entry's own code stores into an ops slot is a target of
the calls through it; a decisive store (on every path of a function every boot runs)
replaces the static target, a conditional one only adds."""

from __future__ import annotations

import pytest

from entrycheck.model import EdgeKind, Store
from entrycheck.resolve.ops import Ops

from .conftest import snippet_graph


def test_sample_xen_stores(built, expected):
    facts = built.facts("xen_start_kernel")
    pv_ops = built.image.symbol_address(expected["ops_table"]["symbol"])
    stored = {built.functions.at(s.value).name for s in facts.stores}
    assert stored == set(expected["ops_table"]["xen_pv_stores"])
    assert all(isinstance(s, Store) and pv_ops <= s.slot < pv_ops + 0x100 for s in facts.stores)


def test_sample_xen_pv_calls_what_it_stored(built, graphs, expected):
    xen = graphs["xen-pv"]
    edge = built.edge(xen, "setup_arch", "xen_write_cr4")
    assert (edge.kind, edge.resolver) == (EdgeKind.OPS, "ops")
    assert edge.via == "pv_ops (stored by xen_start_kernel)"
    assert edge.storer == built.addr("xen_start_kernel")
    # the store is decisive: pv_ops' static native_write_cr4 is gone from xen-pv's graph
    assert "native_write_cr4" not in built.reached(xen)
    assert "native_write_cr4" in built.reached(graphs["native"])
    assert set(expected["ops_table"]["native_targets"]) >= {"native_write_cr4"}


def test_decisive_store_is_must_execute(built):
    func = built.func("xen_start_kernel")
    must = built.resolver(Ops).must(func, 64, func.start, "xen-pv")
    assert {s.address for s in built.facts("xen_start_kernel").stores} <= must


SOURCE = r"""
    .text
    .globl startup_64
startup_64:
    test %edi, %edi
    jz 1f
    lea cond_target(%rip), %rax
    mov %rax, cond_slot(%rip)           # only on some boots: adds a target
1:  lea must_target(%rip), %rax
    mov %rax, must_slot(%rip)           # on every boot: replaces the static target
    call user
    ret
user:
    call *cond_slot(%rip)
    call *must_slot(%rip)
    ret
cond_target: ret
must_target: ret
static_cond: ret
static_must: ret
    .data
    .balign 8
cond_slot: .quad static_cond
must_slot: .quad static_must
"""


@pytest.fixture(scope="module")
def case():
    return snippet_graph(SOURCE)


def test_conditional_store_adds_decisive_store_replaces(case):
    _, b, graph = case
    out = {b.functions.at(c).name: (e.kind, e.resolver) for c, e in
           graph.succ[b.addr("user")].items()}
    assert out == {"static_cond": (EdgeKind.SLOT, "slots"),
                   "cond_target": (EdgeKind.OPS, "ops"),
                   "must_target": (EdgeKind.OPS, "ops")}
    assert "static_must" not in b.reached(graph)
    assert graph.resolved["ops"] == 2


ORDER = r"""
    .text
    .globl startup_64
startup_64:
    call early_user                     # reads the slot before the store
    lea must_target(%rip), %rax
    mov %rax, must_slot(%rip)           # on every boot, but after early_user
    call late_user
    ret
early_user:
    call *must_slot(%rip)
    ret
late_user:
    call *must_slot(%rip)
    ret
must_target: ret
static_must: ret
    .data
    .balign 8
must_slot: .quad static_must
"""


def test_a_decisive_store_decides_only_the_reads_after_it():
    _, b, graph = snippet_graph(ORDER)

    def callees(caller: str) -> set[str]:
        return b.names(graph.succ[b.addr(caller)])

    assert callees("early_user") == {"static_must", "must_target"}
    assert callees("late_user") == {"must_target"}


STORE_THEN_USER = r"""
startup_64:
    lea must_target(%rip), %rax
    mov %rax, must_slot(%rip)           # on every boot
    call user
    ret
"""
KEEPS = {  # a store on every boot, and another way that still leads to the old target
    "shared_default": STORE_THEN_USER + r"""
user:
    call *must_slot(%rip)
    call *other_slot(%rip)              # no store decides it: still static_must
    ret
""",
    "direct_and_slot": STORE_THEN_USER + r"""
user:
    call static_must                    # called directly as well
    call *must_slot(%rip)
    ret
""",
    "restored": r"""
startup_64:
    lea must_target(%rip), %rax
    mov %rax, must_slot(%rip)
    test %edi, %edi
    jz 1f
    call restore                        # some boots put the old target back
1:  call user
    ret
restore:
    lea static_must(%rip), %rax
    mov %rax, must_slot(%rip)
    ret
user:
    call *must_slot(%rip)
    ret
""",
    "storer_not_always_called": r"""
startup_64:
    test %edi, %edi
    jz 1f
    lea xen_init(%rip), %rax
    mov %rax, hook(%rip)
1:  call *hook(%rip)                    # native_init or xen_init: one of them
    call user
    ret
xen_init:                               # stores whenever it runs, on some boots only
    lea must_target(%rip), %rax
    mov %rax, must_slot(%rip)
    ret
native_init: ret
user:
    call *must_slot(%rip)
    ret
""",
}
KEEPS_DATA = r"""
must_target: ret
static_must: ret
    .data
    .balign 8
must_slot: .quad static_must
other_slot: .quad static_must
hook: .quad native_init
"""


@pytest.mark.parametrize("case", sorted(KEEPS))
def test_the_old_target_stays_where_another_way_leads_to_it(case):
    text = KEEPS[case]
    data = KEEPS_DATA if "native_init" in text else KEEPS_DATA.replace(
        "hook: .quad native_init\n", "")
    _, b, graph = snippet_graph("    .text\n    .globl startup_64\n" + text + data)
    assert "static_must" in b.names(graph.succ[b.addr("user")])


def test_a_replaced_read_is_no_hook_row_where_the_callee_stays_for_another_slot():
    _, b, graph = snippet_graph("    .text\n    .globl startup_64\n" + KEEPS["shared_default"]
                                + KEEPS_DATA.replace("hook: .quad native_init\n", ""))
    rows = {(h.name, b.functions.at(h.target).name) for h in graph.hooks}
    assert ("must_slot", "static_must") not in rows
    assert {("must_slot", "must_target"), ("other_slot", "static_must")} <= rows
