"""entrycheck.resolve.alternatives: calls and jumps in `.altinstr_replacement` are edges
under "alternatives applied"; the code after a site is decoded; jumps from replacement
code back into the function and `static_cpu_has()`'s `.altinstr_aux` test are followed."""

from __future__ import annotations

import struct

import pytest

from entrycheck.binary.image import Image
from entrycheck.model import EdgeKind
from entrycheck.resolve.alternatives import CONDITION, Alternatives

from .conftest import last_link, snippet_graph


def test_sample_replacement_call(built, graphs):
    link, = built.links(Alternatives, "early_cpu_init")
    replacement = built.image.section(".altinstr_replacement")
    assert (link.target, link.kind, link.condition, link.tail) == (
        built.addr("alt_only_helper"), EdgeKind.ALTERNATIVE, CONDITION, False)
    assert replacement.contains(link.site)
    alt = built.image.symbol_address("__alt_instructions")
    site = alt + struct.unpack("<i", built.image.read(alt, 4))[0]
    assert built.image.read(site, 5) == b"\x90" * 5  # the original: nops only, no call
    func = built.func("early_cpu_init")
    assert built.resolver(Alternatives).starts(func) == [site + 5]
    edge = built.edge(graphs["native"], "early_cpu_init", "alt_only_helper")
    assert (edge.kind, edge.condition) == (EdgeKind.ALTERNATIVE, CONDITION)


def test_sample_has_no_aux(built):
    assert built.resolver(Alternatives).decoder_options() == {"aux": []}


SOURCE = r"""
    .text
    .globl startup_64
startup_64:
    .type site, @object
site:
    jmp aux_test                        # static_cpu_has(): patched to a jmp or a nop
    .type original_end, @object
original_end:
    call feature_absent
    ret
    .type feature_present, @object
feature_present:
    call feature_helper
    ret
    .type back, @object
back:
    call after_replacement
    ret
feature_absent: ret
feature_helper: ret
after_replacement: ret
out_of_line: ret

    .section .altinstr_aux,"ax"
aux_test:
    testb $1, cpu_caps(%rip)
    jnz feature_present
    jmp original_end

    .section .altinstr_replacement,"ax"
repl:
    jmp back                            # back into the function: a conditional start
repl2:
    jmp out_of_line                     # out of it: an edge
repl_end:

    .data
linux_banner: .asciz "Linux version 6.12.0"
cpu_caps: .byte 0

    .section .altinstructions,"a"       # struct alt_instr from 6.3: 14 bytes
    .long site - ., repl - .
    .long 0x1a
    .byte 5, repl2 - repl
    .long original_end - ., repl2 - .
    .long 0x1b
    .byte 5, repl_end - repl2
"""


@pytest.fixture(scope="module")
def case():
    return snippet_graph(SOURCE)


def test_aux_and_replacement_branches(case):
    snip, b, graph = case
    resolver = b.resolver(Alternatives)
    func = b.func("startup_64")
    aux = snip.image.section(".altinstr_aux")
    assert resolver.decoder_options() == {"aux": [(aux.addr, aux.addr + aux.size)]}
    assert resolver.conditional_starts(func) == [(snip["back"], CONDITION)]
    out = {b.functions.at(c).name: (e.kind, e.condition)
           for c, e in graph.succ[func.start].items()}
    assert out == {
        "feature_absent": (EdgeKind.CALL, None),        # the aux test's fall-back arm
        "feature_helper": (EdgeKind.CALL, None),        # its feature-present arm
        "after_replacement": (EdgeKind.CALL, CONDITION),
        "out_of_line": (EdgeKind.ALTERNATIVE, CONDITION),
    }


@pytest.mark.realkernel
def test_debian61_alternative(capsys, debian61):
    """x86_64_start_kernel: clear_page() is alternative_call_2(clear_page_orig, ...);
    .altinstr_replacement holds `call clear_page_erms` (objdump -d, readelf)."""
    image = debian61["vmlinux_nodebug"]
    chain, edge = last_link(capsys, image, "native", "clear_page_erms")
    assert chain[-2] == "x86_64_start_kernel" and edge["kind"] == "alternative"
    assert Image(image).section_at(int(edge["site"], 16)).name == ".altinstr_replacement"
