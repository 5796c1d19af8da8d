"""Boot facts decide branches when asking what a function always runs."""

from __future__ import annotations

import struct

from entrycheck.decode.cfg import Facts, Known, dead_code, must_execute
from entrycheck.decode.dataflow import register_named
from entrycheck.model import NONZERO, Function, Possible

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
