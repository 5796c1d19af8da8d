"""Boot facts decide branches when asking what a function always runs."""

from __future__ import annotations

import struct

from entrycheck.decode.cfg import Facts, must_execute
from entrycheck.decode.dataflow import register_named
from entrycheck.model import Function

BASE = 0xFFFFFFFF81000000
FENTRY = BASE - 0x1000
VARIABLE = BASE + 0x2000


def _code(check: bytes) -> tuple[bytes, int]:
    """call __fentry__; <check>; je out; mov %rax,0(%rip) (the store); ret; out: ret."""
    call = b"\xe8" + struct.pack("<i", FENTRY - (BASE + 5))
    store = b"\x48\x89\x05\x00\x00\x00\x00"
    body = call + check + b"\x74" + bytes([len(store) + 1]) + store + b"\xc3" + b"\xc3"
    return body, BASE + len(call) + len(check) + 2


def _must(code: bytes, facts: Facts | None) -> frozenset[int]:
    func = Function("f", BASE, BASE + len(code), ".text")

    def read(addr: int, size: int) -> bytes:
        return code[addr - BASE: addr - BASE + size]

    return must_execute(read, func, 64, BASE, frozenset(), frozenset(), facts)


def test_argument_fact_decides_the_early_return():
    code, store = _code(b"\x48\x85\xff")  # test %rdi,%rdi
    rdi = ((register_named("rdi"), None),)
    assert store not in _must(code, None)
    assert store in _must(code, Facts(rdi, (), frozenset({FENTRY})))
    # a call that may change %rdi forgets the fact
    assert store not in _must(code, Facts(rdi, ()))


def test_variable_fact_decides_a_compare():
    # cmpq $0x0, VARIABLE(%rip): the displacement is relative to the next instruction
    at = BASE + 5
    disp = VARIABLE - (at + 8)
    code, store = _code(b"\x48\x83\x3d" + struct.pack("<i", disp) + b"\x00")
    assert store in _must(code, Facts((), ((VARIABLE, 1),)))
    assert store not in _must(code, Facts((), ((VARIABLE, 0),)))
    assert store not in _must(code, None)
