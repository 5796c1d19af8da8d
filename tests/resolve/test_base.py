"""entrycheck.resolve.base.ImageContext.boot_facts: a variable fact holds throughout the
boot, or, with a function, only while that function runs."""

from __future__ import annotations

from importlib import resources

from entrycheck.knowledge import load

from .conftest import snippet_graph

SCOPED = r"""
    .text
    .globl startup_64
startup_64:
    call early
    call later
    ret
early:                      # runs while `flag` is known to be 0: only the zero side
    cmpl $0, flag(%rip)
    je 1f
    call when_set
1:  ret
later:                      # the fact says nothing here
    cmpl $0, flag(%rip)
    je 1f
    call when_set_later
1:  ret
when_set: ret
when_set_later: ret
    .data
flag: .long 0
"""


def test_a_variable_fact_scoped_to_a_function_decides_only_there():
    text = resources.files("entrycheck").joinpath("data/x86.yaml").read_text()
    fact = ("boot_facts:\n  - entry: test\n    function: early\n    variable: flag\n"
            "    value: 0\n    set_by: startup_64\n    source: the test\n")
    _, b, graph = snippet_graph(SCOPED, knowledge=load(text.replace("boot_facts:\n", fact, 1),
                                                       "test.yaml"))
    assert "when_set_later" in b.reached(graph)
    assert "when_set" not in b.reached(graph)
