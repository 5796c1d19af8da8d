"""entrycheck.decode.cfg.must_execute: which instructions run on every path to a normal
exit (the ops resolver's test of a store that always happens); runs_before: which may run
before a given instruction (what may read a slot before its store)."""

from __future__ import annotations

import pytest

from entrycheck.decode.cfg import must_execute, runs_before

from ..snippets import assemble

SOURCE = r"""
    .text
panic_fn: hlt
next_stage: hlt

branches:                   # a store before the branch always runs, one inside it does not
    lea panic_fn(%rip), %rax
always:
    mov %rax, slot(%rip)
    test %edi, %edi
    jz 1f
sometimes:
    mov %rax, slot(%rip)
1:
joined:
    ret
branches_end:

dead_end:                   # if (bad) { panic(); return; } store: panic is not the boot
    test %edi, %edi
    jnz 1f
panic_call:
    call panic_fn
    ret
1:
after_check:
    mov %rax, slot(%rip)
    ret
dead_end_end:

hands_on:                   # ends in a call that never returns (x86_64_start_reservations)
    test %edi, %edi
    jz 1f
maybe:
    nop
1:
last_call:
    call next_stage
hands_on_end:

loops_back:                 # read(); store; loop: the read runs before the first store only
    test %edi, %edi
    jz 1f
early_read:
    call *slot(%rip)
1:
store:
    mov %rax, slot(%rip)
late_read:
    call *slot(%rip)
    dec %edi
    jnz 1b
    ret
loops_back_end:

spins:                      # never reaches an exit
    nop
1:  jmp 1b
spins_end:

    .data
slot: .quad 0
"""


@pytest.fixture(scope="module")
def snip():
    return assemble(SOURCE)


def must(snip, name: str, **lists) -> frozenset[int]:
    func = snip.function(name, f"{name}_end")
    return must_execute(snip.image.read, func, 64, func.start,
                        frozenset(snip[n] for n in lists.get("noreturn", ())),
                        frozenset(snip[n] for n in lists.get("dead_ends", ())))


def test_store_before_a_branch_runs_always(snip):
    got = must(snip, "branches")
    assert {snip["branches"], snip["always"], snip["joined"]} <= got
    assert snip["sometimes"] not in got


def test_dead_end_paths_do_not_count(snip):
    got = must(snip, "dead_end", dead_ends=["panic_fn"])
    assert snip["after_check"] in got and snip["panic_call"] not in got
    # were panic a call that returns, its path would reach `ret` without the store
    assert snip["after_check"] not in must(snip, "dead_end")


def test_noreturn_call_is_an_exit(snip):
    got = must(snip, "hands_on", noreturn=["next_stage"])
    assert snip["last_call"] in got and snip["maybe"] not in got


def test_no_exit_nothing_must_run(snip):
    assert must(snip, "spins") == frozenset()


def test_what_runs_before_an_instruction(snip):
    func = snip.function("loops_back", "loops_back_end")
    before, decoded = runs_before(snip.image.read, func, 64, func.start,
                                  frozenset({snip["store"]}), frozenset())
    assert snip["early_read"] in before
    assert snip["store"] not in before and snip["late_read"] not in before
    assert {snip["store"], snip["late_read"]} <= decoded
