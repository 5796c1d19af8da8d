"""entrycheck.graph: one walk per entry over functions decoded once; after the walk,
returns propagate through tail jumps, a fall-through after a call that never returns is
dropped (and what only it reached), edges into exception entries are fault edges, and
unresolved sites say why."""

from __future__ import annotations

import pytest

from entrycheck.binary.functions import FunctionTable
from entrycheck.binary.image import Image
from entrycheck.entries import Entry, find_entries
from entrycheck.errors import EntrycheckError
from entrycheck.graph import GraphBuilder, _merge
from entrycheck.knowledge import x86
from entrycheck.model import EdgeKind

from .snippets import assemble

SOURCE = r"""
    .text
    .globl startup_64
startup_64:
    call worker
    call tail_user
    call asm_exc_page_fault             # emulating an exception: a fault edge
    .type unknown_call, @object
unknown_call:
    call *%rax                          # nothing known in %rax
    call stuck                          # never returns: the fall-through below is dead
next_one:
    call only_after
    ret
stuck:
    jmp stuck
worker:
    ret
tail_user:
    jmp worker                          # returns because worker does
asm_exc_page_fault:
    ret
only_after:
    ret
"""


@pytest.fixture(scope="module")
def snippet():
    snip = assemble(SOURCE)
    functions = FunctionTable(snip.image)
    builder = GraphBuilder(snip.image, functions, x86())
    graph = builder.build(Entry("test", "startup_64", snip["startup_64"], 64, ("symbol",)))
    return snip, graph


def test_fall_through_after_a_call_that_never_returns(snippet):
    snip, graph = snippet
    names = {graph.name(a) for a in graph.nodes}
    assert names == {"startup_64", "worker", "tail_user", "asm_exc_page_fault", "stuck"}
    assert snip["next_one"] not in graph.succ[snip["startup_64"]]


def test_returns_propagate_through_tail_jumps(snippet):
    _, graph = snippet
    returns = {graph.name(a): graph.nodes[a].returns for a in graph.nodes}
    assert returns == {"startup_64": False, "worker": True, "tail_user": True,
                       "asm_exc_page_fault": True, "stuck": False}


def test_edge_kinds_and_fault_edges(snippet):
    snip, graph = snippet
    kinds = {graph.name(b): e.kind for b, e in graph.succ[snip["startup_64"]].items()}
    assert kinds == {"worker": EdgeKind.CALL, "tail_user": EdgeKind.CALL,
                     "asm_exc_page_fault": EdgeKind.EXCEPTION, "stuck": EdgeKind.CALL}
    assert graph.succ[snip["tail_user"]][snip["worker"]].kind == EdgeKind.JUMP


def test_unresolved_site_and_reason(snippet):
    snip, graph = snippet
    u, = graph.unresolved
    assert (u.function, u.site, u.text) == (snip["startup_64"], snip["unknown_call"],
                                            "call rax")
    assert u.reason == "the register's value is not a constant known here"
    assert graph.resolved == {"direct": 6}  # the dropped fall-through is accounted for


@pytest.fixture(scope="module")
def sample_builder(sample):
    image = Image(sample)
    functions = FunctionTable(image)
    return GraphBuilder(image, functions, x86()), find_entries(image, functions, x86())


def test_stop_set_reaches_but_does_not_expand(sample_builder):
    builder, entries = sample_builder
    native = next(e for e in entries if e.name == "native")
    graph = builder.build(native, stop=frozenset({"x86_64_start_reservations"}))
    stop = builder.functions.named("x86_64_start_reservations").start
    assert stop in graph.nodes and graph.succ[stop] == {}
    assert builder.functions.named("start_kernel").start not in graph.nodes


def test_functions_are_decoded_once_for_all_entries(sample_builder):
    builder, entries = sample_builder
    func = builder.functions.named("x86_64_start_reservations")
    for entry in entries:
        builder.build(entry)
    facts = builder.facts(func, 64, func.start)
    assert builder.facts(func, 64, func.start) is facts
    assert builder.plan(func, 64, func.start).facts is facts


def test_init_marks(sample_builder):
    builder, entries = sample_builder
    graph = builder.build(entries[0], init=lambda address, section: section == ".init.text")
    init = {graph.name(a) for a in graph.nodes if graph.nodes[a].init}
    assert "x86_64_start_kernel" in init and "startup_64" not in init
    assert all(graph.nodes[a].section == ".init.text" for a in graph.nodes if graph.nodes[a].init)


def test_entry_that_is_not_code(sample_builder):
    builder, _ = sample_builder
    data = builder.image.symbol_address("pv_ops")
    with pytest.raises(EntrycheckError, match="is not code"):
        builder.build(Entry("bad", "pv_ops", data, 64, ("user",)))


def test_merge_of_decoder_options():
    assert _merge({1: "rax"}, {2: "rbx"}) == {1: "rax", 2: "rbx"}
    assert _merge(frozenset({1}), {2}) == frozenset({1, 2})
    assert _merge((1,), [2]) == (1, 2)
