"""entrycheck.resolve.jump_labels: a static key's out-of-line code is decoded as linked when
the site is compiled as a jump, as conditional behind a nop; the code after a jump is
conditional too (it runs once the jump is patched out). The condition names the key from
the entry's key field (self-relative, flags in the low two bits) and the state the branch
bit asks: a site is a jump exactly when the key differs from the bit."""

from __future__ import annotations

import struct

import pytest

from entrycheck.analysis import analyse
from entrycheck.binary.image import Image
from entrycheck.model import EdgeKind
from entrycheck.resolve.jump_labels import JumpLabels

from .conftest import snippet_graph


def jump_entries(image) -> list[tuple[int, int]]:
    """(code, target) of each 16-byte `struct jump_entry`, read from the raw bytes."""
    start = image.symbol_address("__start___jump_table")
    stop = image.symbol_address("__stop___jump_table")
    data = image.read(start, stop - start)
    out = []
    for off in range(0, len(data), 16):
        code, target = struct.unpack_from("<ii", data, off)
        out.append((start + off + code, start + off + 4 + target))
    return out


def test_sample_nop_site_is_conditional(built):
    """early_cpu_init's 5-byte nop: its out-of-line block is a conditional start."""
    (code, target), = jump_entries(built.image)
    func = built.func("early_cpu_init")
    assert built.image.read(code, 5) == bytes.fromhex("0f1f440000")
    resolver = built.resolver(JumpLabels)
    assert resolver.starts(func) == []
    assert resolver.conditional_starts(func) == [
        (target, "static key early_debug_key enabled")]
    assert func.start <= code < target < func.end


def test_sample_call_behind_the_key(built, graphs):
    edge = built.edge(graphs["native"], "early_cpu_init", "static_key_only_helper")
    assert (edge.kind, edge.condition) == (EdgeKind.CALL, "static key early_debug_key enabled")
    (_, target), = jump_entries(built.image)
    assert target <= edge.site < built.func("early_cpu_init").end


SOURCE = r"""
    .text
    .globl startup_64
startup_64:
    .type nop_site, @object
nop_site:
    .byte 0x0f, 0x1f, 0x44, 0x00, 0x00  # static_branch_unlikely(&key_off): a nop
    .type jmp_site, @object
jmp_site:
    jmp 2f                              # static_branch_likely(&key_off2): a jump
    .type after_jmp, @object
after_jmp:
    call key_flipped_helper             # runs once key_off2 is enabled (jump patched out)
    .type true_site, @object
true_site:
    jmp true_target                     # static_branch_unlikely(&key_on): a jump
    .type after_true, @object
after_true:
    call key_cleared_helper             # runs once key_on is disabled
    ret
    .type nop_target, @object
nop_target:
    call key_on_helper
    ret
2:
    .type jmp_target, @object
jmp_target:
    call key_off_helper
    .type true_target, @object
true_target:
    ret
key_on_helper: ret
key_off_helper: ret
key_flipped_helper: ret
key_cleared_helper: ret
    .data
    .type key_off, @object
    .size key_off, 4
key_off: .long 0
    .type key_off2, @object
    .size key_off2, 4
key_off2: .long 0
    .type key_on, @object
    .size key_on, 4
key_on: .long 1
    .balign 8
__start___jump_table:
    .long nop_site - ., nop_target - .
    .quad key_off - .                   # branch bit clear
    .long jmp_site - ., jmp_target - .
    .quad key_off2 + 1 - .              # branch bit set (likely)
    .long true_site - ., true_target - .
    .quad key_on - .                    # branch bit clear, a true key: compiled as a jump
__stop___jump_table:
"""


@pytest.fixture(scope="module")
def case():
    return snippet_graph(SOURCE)


def test_jump_site_runs_as_linked(case):
    snip, b, graph = case
    resolver = b.resolver(JumpLabels)
    assert resolver.starts(b.func("startup_64")) == [snip["jmp_target"], snip["true_target"]]
    assert resolver.conditional_starts(b.func("startup_64")) == [
        (snip["nop_target"], "static key key_off enabled"),
        (snip["after_jmp"], "static key key_off2 enabled"),
        (snip["after_true"], "static key key_on disabled")]
    assert b.edge(graph, "startup_64", "key_off_helper").condition is None
    assert b.edge(graph, "startup_64", "key_on_helper").condition == "static key key_off enabled"
    assert b.edge(graph, "startup_64", "key_flipped_helper").condition == \
        "static key key_off2 enabled"
    assert b.edge(graph, "startup_64", "key_cleared_helper").condition == \
        "static key key_on disabled"


@pytest.mark.realkernel
def test_debian61_jump_label(debian61):
    """printk_sprint: trace_console()'s static key is a 2-byte nop (`66 90`); its
    out-of-line block calls __SCT__tp_func_console."""
    image = debian61["vmlinux_nodebug"]
    graph = analyse(image, complete=True).graph("native")
    img = Image(image)
    start = img.symbol_address("printk_sprint")
    edge = graph.succ[start][img.symbol_address("__SCT__tp_func_console")]
    assert edge.kind == EdgeKind.CALL
    assert edge.condition == "static key __tracepoint_console+0x8 enabled"
    site = edge.site
    targets = [target for code, target in jump_entries(img) if start <= code < site]
    assert any(target <= site for target in targets)  # inside a jump-label block


@pytest.mark.realkernel
def test_debian61_code_after_a_jump_site(debian61):
    """sched_clock_cpu: `static_branch_likely(&sched_clock_running)` of a key false at
    link time is a jump past the per-CPU clock (sched_clock_local), which runs once
    sched_clock_init() enables the key and the jump is patched out, as in a QEMU boot."""
    image = debian61["vmlinux_nodebug"]
    graph = analyse(image, complete=True).graph("native")
    img = Image(image)
    edge = graph.succ[img.symbol_address("sched_clock_cpu")][
        img.symbol_address("sched_clock_local")]
    assert edge.kind == EdgeKind.CALL
    assert edge.condition == "static key sched_clock_running enabled"
