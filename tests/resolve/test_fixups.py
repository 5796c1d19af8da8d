"""entrycheck.resolve.fixups: where a faulting instruction resumes (`__ex_table`) is code
that runs: a call only the fixup reaches is an edge."""

from __future__ import annotations

from entrycheck.model import EdgeKind
from entrycheck.resolve.fixups import Fixups

from .conftest import snippet_graph

SOURCE = r"""
    .text
    .globl startup_64
startup_64:
    .type fault, @object
fault:
    mov (%rdi), %rax                    # a user access that may fault
    ret
    .type fixup, @object
fixup:
    call report_efault
    ret
report_efault: ret
    .data
    .balign 4
__start___ex_table:                     # struct exception_table_entry: insn, fixup, data
    .long fault - ., fixup - ., 0
__stop___ex_table:
"""


def test_fixup_is_a_decode_start():
    snip, b, graph = snippet_graph(SOURCE)
    assert b.resolver(Fixups).starts(b.func("startup_64")) == [snip["fixup"]]
    assert b.edge(graph, "startup_64", "report_efault").kind == EdgeKind.CALL


def test_sample_has_no_fixups(built):
    assert all(built.resolver(Fixups).starts(f) == [] for f in built.functions)
