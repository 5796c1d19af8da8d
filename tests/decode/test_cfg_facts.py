"""Boot facts decide branches when asking what a function always runs."""

from __future__ import annotations

import struct

import pytest

from entrycheck.decode.cfg import Facts, Known, dead_code, must_execute
from entrycheck.decode.dataflow import register_named
from entrycheck.model import NONZERO, Function, Possible

from ..snippets import assemble

BASE = 0xFFFFFFFF81000000
FENTRY = BASE - 0x1000
VARIABLE = BASE + 0x2000


def _code(check: bytes) -> tuple[bytes, int]:
    """call __fentry__; <check>; je out; mov %rax,0(%rip) (the store); ret; out: ret."""
    call = b"\xe8" + struct.pack("<i", FENTRY - (BASE + 5))
    store = b"\x48\x89\x05\x00\x00\x00\x00"
    body = call + check + b"\x74" + bytes([len(store) + 1]) + store + b"\xc3" + b"\xc3"
    return body, BASE + len(call) + len(check) + 2


def _reader(code: bytes):
    def read(addr: int, size: int) -> bytes:
        return code[addr - BASE: addr - BASE + size]
    return read


def _must(code: bytes, facts: Facts | None) -> frozenset[int]:
    func = Function("f", BASE, BASE + len(code), ".text")
    return must_execute(_reader(code), func, 64, BASE, frozenset(), frozenset(), facts)


def _variable(value: Possible) -> Facts:
    return Facts((), (Known(VARIABLE, value, "v"),))


def _compare_variable(imm: int) -> bytes:
    """cmpq $imm, VARIABLE(%rip): the displacement is relative to the next instruction."""
    disp = VARIABLE - (BASE + 5 + 8)
    return b"\x48\x83\x3d" + struct.pack("<i", disp) + bytes([imm])


def test_argument_fact_decides_the_early_return():
    code, store = _code(b"\x48\x85\xff")  # test %rdi,%rdi
    rdi = (Known(register_named("rdi"), NONZERO, "si is not 0"),)
    assert store not in _must(code, None)
    assert store in _must(code, Facts(rdi, (), frozenset({FENTRY})))
    # a call that may change %rdi forgets the fact
    assert store not in _must(code, Facts(rdi, ()))


def test_variable_fact_decides_a_compare():
    code, store = _code(_compare_variable(0))
    assert store in _must(code, _variable(Possible(frozenset({1}))))
    assert store not in _must(code, _variable(Possible(frozenset({0}))))
    assert store not in _must(code, None)


def test_a_fact_of_several_values_decides_only_what_none_of_them_is():
    # xen_domain_type is 0 or 2 on native: `== 1` (xen_pv_domain()) is false, `== 2` open
    native = _variable(Possible(frozenset({0, 2})))
    code, store = _code(_compare_variable(1))  # je out: not taken, the store runs
    assert store in _must(code, native)
    code, store = _code(_compare_variable(2))
    assert store not in _must(code, native)
    code, store = _code(_compare_variable(3))
    assert store in _must(code, _variable(Possible(excluded=frozenset({3}))))


def test_dead_code_names_the_branch_and_the_fact():
    code, store = _code(_compare_variable(1))
    func = Function("f", BASE, BASE + len(code), ".text")
    branch = store - 2
    xen_pv = Facts((), (Known(VARIABLE, Possible(frozenset({1})), "xen_domain_type is 1"),))
    # on Xen PV the je is taken: the store and the ret after it are dead
    dead = dead_code(_reader(code), func, 64, (BASE,), frozenset(), xen_pv)
    assert dead[store] == (branch, "xen_domain_type is 1")
    assert store + 7 in dead and len(dead) == 2
    assert dead_code(_reader(code), func, 64, (BASE,), frozenset(), Facts()) == {}


# What is known flows along branches and past calls in callee-saved registers, and where
# paths join only what all of them know holds (vgacon_startup on sid's 7.2 keeps
# pv_info.io_delay in %ebp across calls and loops).
FLOW = r"""
    .text
helper: ret

kept:                       # the fact in %ebp survives a call, a copy and a jump
    movzbl flag(%rip), %ecx
    mov %ecx, %ebp
    call helper
    jmp 1f
    nop
1:
    test %bpl, %bpl
    je 2f
kept_delay:
    call helper
2:
    ret
kept_end:

joined:                     # the path decoded second overwrote %ebp: not decided
    movzbl flag(%rip), %ebp
    test %edi, %edi
    jne 2f
1:
    test %bpl, %bpl
    je 3f
joined_delay:
    call helper
3:
    ret
2:
    mov %edi, %ebp
    jmp 1b
joined_end:

clobbered:                  # %ecx is not kept across a call
    movzbl flag(%rip), %ecx
    call helper
    test %ecx, %ecx
    je 1f
clobbered_delay:
    call helper
1:
    ret
clobbered_end:

subarch:                    # switch (hardware_subarch), as x86_early_init_platform_quirks
    mov word(%rip), %eax
    cmp $2, %eax
    je 1f
    ja 2f
    test %eax, %eax
    jne 3f
subarch_pc:
    call helper
    ret
1:
subarch_xen:
    call helper
    ret
2:
subarch_above:
    call helper
3:
    ret
subarch_end:

bits:                       # test $mask on a byte flag
    testb $2, flag(%rip)
    jne 1f
bits_clear:
    call helper
    ret
1:
bits_set:
    call helper
    ret
bits_end:

indirect:                   # an indirect call returns in %eax: the fact is gone
    movzbl flag(%rip), %eax
    call *slot(%rip)
    test %eax, %eax
    je 1f
indirect_live:
    call helper
1:
    ret
indirect_end:

high:                       # %ah holds bits 8-15, not the flag
    movzbl flag(%rip), %eax
    test $1, %ah
    jne 1f
high_live:
    call helper
1:
    ret
high_end:

wide:                       # a 4-byte read of a 1-byte flag sees the bytes after it
    cmpl $0, flag(%rip)
    je 1f
wide_live:
    call helper
1:
    ret
wide_end:

implied:                    # cpuid writes %ebx
    mov word(%rip), %ebx
    cpuid
    test %ebx, %ebx
    je 1f
implied_live:
    call helper
1:
    ret
implied_end:

    .data
flag: .byte 0
    .balign 4
word: .long 0
slot: .quad 0
"""


def _flow_dead(name: str, *values: int, variable: str = "flag"):
    """The snippet, and the code of function `name` dead when `variable` is one of
    `values`."""
    snip = assemble(FLOW)
    func = snip.function(name, f"{name}_end")
    size = {"flag": 1, "word": 4}[variable]
    facts = Facts((), (Known(snip[variable], Possible(frozenset(values)), "flag is 0", size),))
    return snip, dead_code(snip.image.read, func, 64, (func.start,), frozenset(), facts)


def test_a_fact_flows_past_calls_copies_and_jumps():
    snip, dead = _flow_dead("kept", 0)
    assert snip["kept_delay"] in dead and dead[snip["kept_delay"]][1] == "flag is 0"
    snip, dead = _flow_dead("kept", 1)
    assert snip["kept_delay"] not in dead


def test_where_paths_join_only_what_both_know_holds():
    snip, dead = _flow_dead("joined", 0)
    assert snip["joined_delay"] not in dead


def test_a_call_forgets_a_caller_saved_register():
    snip, dead = _flow_dead("clobbered", 0)
    assert snip["clobbered_delay"] not in dead


def test_any_condition_code_is_decided_when_every_value_agrees():
    snip, dead = _flow_dead("subarch", 0, variable="word")  # PC: ja and jne not taken
    assert {snip["subarch_xen"], snip["subarch_above"]} <= dead.keys()
    assert snip["subarch_pc"] not in dead
    snip, dead = _flow_dead("subarch", 2, variable="word")  # Xen: je taken
    assert {snip["subarch_pc"], snip["subarch_above"]} <= dead.keys()
    snip, dead = _flow_dead("subarch", 0, 3, variable="word")  # ja not decided
    assert snip["subarch_above"] not in dead and snip["subarch_xen"] in dead


def test_a_test_of_a_mask_is_decided():
    snip, dead = _flow_dead("bits", 2, 3)   # bit 1 set: jne taken
    assert snip["bits_clear"] in dead and snip["bits_set"] not in dead
    snip, dead = _flow_dead("bits", 1, 4)   # bit 1 clear: not taken
    assert snip["bits_set"] in dead and snip["bits_clear"] not in dead
    snip, dead = _flow_dead("bits", 1, 2)   # not decided
    assert dead == {}


@pytest.mark.parametrize("name", ["indirect", "high", "wide", "implied"])
def test_what_a_register_or_read_does_not_hold_decides_nothing(name):
    """An indirect call's return value, %ah, a read wider than the variable, an implied
    write (cpuid's %ebx): each leaves the branch undecided."""
    variable = "word" if name == "implied" else "flag"
    _, dead = _flow_dead(name, 0, variable=variable)
    assert dead == {}


def test_a_nonzero_fact_needs_the_whole_value():
    """A non-NULL pointer in %rdi: `test %rdi,%rdi` is decided, `test %dil,%dil` (its low
    byte may be 0) is not."""
    rdi = Facts((Known(register_named("rdi"), NONZERO, "si is not 0"),), (), frozenset({FENTRY}))
    for check, decided in ((b"\x48\x85\xff", True), (b"\x40\x84\xff", False)):
        code, store = _code(check)
        assert (store in _must(code, rdi)) == decided
