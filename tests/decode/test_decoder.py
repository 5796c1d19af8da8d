"""entrycheck.decode.decoder: instruction boundaries of crafted byte strings (the kernel's
current instructions where capstone 5 lost sync), the category table, Intel text."""

from __future__ import annotations

import pytest

from entrycheck.decode import decoder as dec

IP = 0xFFFFFFFF81000000
NOP = b"\x90"


def first(code: str, mode: int = 64):
    """The first instruction of hex `code`, followed by a nop (to see where it ends)."""
    return next(dec.instructions(mode, bytes.fromhex(code) + NOP, IP))


# (bytes, length, Intel text, flow control): what the kernel's code holds
CASES = [
    # 7.x __WARN_trap sites: `ud1 (%edx),%rdi` with an address-size prefix (capstone 5: 4
    # bytes, then garbage)
    ("67480fb93a", 5, "ud1 rdi, [edx]", dec.EXCEPTION),
    ("480fb93a", 4, "ud1 rdi, [rdx]", dec.EXCEPTION),
    ("0f0b", 2, "ud2", dec.EXCEPTION),
    # ud2 with a prefix (the kernel pads BUG sites with ds/address-size prefixes)
    ("3e0f0b", 3, "ud2", dec.EXCEPTION),
    ("670f0b", 3, "ud2", dec.EXCEPTION),
    # FRED: return to supervisor / to user mode (entry_64_fred.S)
    ("f20f01ca", 4, "erets", dec.RETURN),
    ("f30f01ca", 4, "eretu", dec.RETURN),
    # LKGS (native_lkgs on FRED/LKGS kernels), which binutils before 2.41 prints as (bad)
    ("f20f00f7", 4, "lkgs edi", dec.NEXT),
    ("cc", 1, "int3", dec.INTERRUPT),
    # `jmp *%rax` of a retpoline-less build, and a far return (startup_64's lretq)
    ("ffe0", 2, "jmp rax", dec.INDIRECT_BRANCH),
    ("48cb", 2, "data64 ret far", dec.RETURN),
]


@pytest.mark.parametrize(("code", "length", "text", "flow"), CASES, ids=[c[2] for c in CASES])
def test_instruction_length_text_and_flow(code, length, text, flow):
    ins = first(code)
    assert (ins.len, dec.text(ins), ins.flow_control) == (length, text, flow)
    assert ins.len == len(bytes.fromhex(code))


def test_sweep_stays_in_sync_after_the_warn_trap():
    """`ud1 (%edx),%rdi; call rel32; ret`: the boundaries are those of the three."""
    code = bytes.fromhex("67480fb93a" "e8" "10000000" "c3")
    assert dec.sweep(64, code, IP) == [IP, IP + 5, IP + 10]
    call = list(dec.instructions(64, code, IP))[1]
    assert call.flow_control == dec.CALL and call.near_branch_target == IP + 10 + 0x10


def test_fwait_is_an_instruction_of_its_own():
    """`9b db e3` is `fwait; fninit` (objdump prints one `finit`: fpu__init_check_bugs)."""
    assert dec.sweep(64, bytes.fromhex("9bdbe3"), IP) == [IP, IP + 1]


def test_invalid_opcode_ends_a_run():
    """`06` (push es) is invalid in 64-bit mode: an INVALID instruction whose flow ends a
    run; iced takes the byte after it along (objdump would resync one byte later)."""
    alone = next(dec.instructions(64, bytes.fromhex("06"), IP))
    assert (alone.len, alone.code, alone.flow_control) == (1, dec.Code.INVALID, dec.EXCEPTION)
    assert dec.sweep(64, bytes.fromhex("06c3"), IP) == [IP]


def test_32_bit_mode_decodes_differently():
    """`48` is `dec eax` in 32-bit mode, a REX.W prefix in 64-bit mode."""
    assert dec.sweep(32, bytes.fromhex("4889c3"), IP) == [IP, IP + 1]
    assert dec.sweep(64, bytes.fromhex("4889c3"), IP) == [IP]


CATEGORY_CASES = [
    ("0f22e0", "mov cr4, rax", dec.PRIVILEGED | dec.TRACKED),
    ("0f30", "wrmsr", dec.PRIVILEGED),
    ("0f011a", "lidt [rdx]", dec.PRIVILEGED | dec.MEMORY),
    ("f20f00f7", "lkgs edi", dec.PRIVILEGED),
    ("48cb", "data64 ret far", dec.FAR),
    ("4885c0", "test rax, rax", dec.FLAGS_ONLY),
    ("50", "push rax", dec.STACK | dec.TRACKED),
    ("48c7c000100081", "mov rax, 0xffffffff81001000", dec.IMMEDIATE | dec.TRACKED),
    ("488d0510000000", "lea rax, [rip+0x10]", dec.TRACKED | dec.MEMORY),
    ("ff2425f0ffffff", "jmp qword ptr [0xfffffffffffffff0]", dec.MEMORY),
    ("0f0b", "ud2", dec.PLAIN),
]


@pytest.mark.parametrize(("code", "text", "bits"), CATEGORY_CASES,
                         ids=[c[1] for c in CATEGORY_CASES])
def test_category_bits(code, text, bits):
    """The bits that matter for each instruction are set (MEMORY marks a form with a
    memory operand, so `test rax, rax` has it too: only the listed bits are checked)."""
    ins = first(code)
    got = dec.categories()[ins.code]
    assert dec.text(ins) == text
    assert got & bits == bits
    others = (dec.PRIVILEGED | dec.FAR | dec.FLAGS_ONLY | dec.STACK) & ~bits
    assert not got & others


def test_categories_cover_every_code():
    table = dec.categories()
    assert len(table) == dec._CODE_COUNT
    assert table[first("0f0b").code] == dec.PLAIN


def test_instruction_text_reads_through_the_image():
    """instruction_text tries shorter reads near the end of a section."""
    code = bytes.fromhex("0f22e0")

    def read(address, size):
        return code[address - IP : address - IP + size] if address - IP + size <= 3 else None

    assert dec.instruction_text(read, IP, 64) == "mov cr4, rax"
    assert dec.instruction_text(lambda a, s: None, IP, 64) == ""
