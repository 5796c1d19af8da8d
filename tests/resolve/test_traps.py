"""entrycheck.resolve.traps: the `ud2` of a WARN() (a `__bug_table` entry with
BUGFLAG_WARNING) comes back, a BUG()'s does not and the calls just before it are on the
error path; `ud1` always comes back (an assembled kernel-shaped snippet)."""

from __future__ import annotations

import pytest

from entrycheck.model import EdgeKind
from entrycheck.resolve.traps import Traps

from .conftest import snippet_graph

SOURCE = r"""
    .text
    .globl startup_64
startup_64:
    call before_warn
    .type warn_site, @object
warn_site:
    ud2                                 # WARN(): reports and returns
    call after_warn
    .byte 0x67, 0x48, 0x0f, 0xb9, 0x3a  # ud1 (%edx),%rdi: 7.x __WARN_trap
    call after_ud1
    test %edi, %edi
    jz 1f
    call reports_bug                    # pr_err() before BUG()
    .type bug_site, @object
bug_site:
    ud2
1:  call after_check
    ud2                                 # not in __bug_table: ends the code
    call never
before_warn: ret
after_warn: ret
after_ud1: ret
reports_bug: ret
after_check: ret
never: ret

    .data
linux_banner: .asciz "Linux version 6.1.0"
    .balign 4
__start___bug_table:                    # struct bug_entry: addr, file, line, flags
    .long warn_site - ., 0
    .word 10, 1                         # BUGFLAG_WARNING
    .long bug_site - ., 0
    .word 20, 0
__stop___bug_table:
"""


@pytest.fixture(scope="module")
def case():
    return snippet_graph(SOURCE)


def test_decoder_options_from_the_bug_table(case):
    snip, b, _ = case
    assert b.resolver(Traps).decoder_options() == {
        "resuming_traps": frozenset({snip["warn_site"]}),
        "bug_traps": frozenset({snip["bug_site"]})}


def test_what_each_trap_lets_run(case):
    _, b, graph = case
    out = {b.functions.at(callee).name: edge.kind
           for callee, edge in graph.succ[b.addr("startup_64")].items()}
    assert out == {"before_warn": EdgeKind.CALL, "after_warn": EdgeKind.CALL,
                   "after_ud1": EdgeKind.CALL, "reports_bug": EdgeKind.ERROR_PATH,
                   "after_check": EdgeKind.CALL}
    assert "never" not in b.reached(graph)
