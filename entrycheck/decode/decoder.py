"""x86 instructions through iced-x86: the boundaries objdump finds, and structured operands.

iced-x86 decodes what the kernel's current code holds (the 5-byte `ud1 (%edx),%rdi` of the
7.x WARN sites, FRED's `erets`/`eretu`, `lkgs`), where capstone 5 loses sync; its
instructions carry their flow control, branch targets and memory operands as fields, so
nothing downstream parses operand text. This module only decodes; what the instructions
mean for control flow is `dataflow.py`'s business.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache

from iced_x86 import (
    Code,
    Decoder,
    DecoderOptions,
    FlowControl,
    Formatter,
    FormatterSyntax,
    Instruction,
    Mnemonic,
    OpCodeInfo,
)

MASK64 = (1 << 64) - 1

# FlowControl values, as plain ints for the hot loop.
NEXT = FlowControl.NEXT
UNCONDITIONAL_BRANCH = FlowControl.UNCONDITIONAL_BRANCH
INDIRECT_BRANCH = FlowControl.INDIRECT_BRANCH
CONDITIONAL_BRANCH = FlowControl.CONDITIONAL_BRANCH
RETURN = FlowControl.RETURN
CALL = FlowControl.CALL
INDIRECT_CALL = FlowControl.INDIRECT_CALL
INTERRUPT = FlowControl.INTERRUPT
EXCEPTION = FlowControl.EXCEPTION

# What the data flow looks at, per instruction code (one table lookup in the hot loop).
PLAIN = 0        # no memory operand form, not tracked: may overwrite a register
MEMORY = 1       # may have a memory operand (a data reference, a store)
TRACKED = 2      # mov/lea/add/sub/push/pop/xor...: moves constants
PRIVILEGED = 4   # wrmsr, lidt, mov to/from control registers...
FAR = 8          # far jmp / far ret: a mode switch
FLAGS_ONLY = 16  # test/cmp/bt: registers keep their values
IMMEDIATE = 32   # has an immediate operand (a constant may enter a register)
STACK = 64       # push or pop
COPY = 128       # movs: copies memory (with rep, a struct)

_TRACKED_MNEMONICS = {Mnemonic.MOV, Mnemonic.LEA, Mnemonic.ADD, Mnemonic.SUB, Mnemonic.PUSH,
                      Mnemonic.POP, Mnemonic.XOR}
_FLAGS_ONLY_MNEMONICS = {Mnemonic.TEST, Mnemonic.CMP, Mnemonic.BT}
_PRIVILEGED_MNEMONICS = {Mnemonic.WRMSR, Mnemonic.WRMSRNS, Mnemonic.LIDT, Mnemonic.LGDT,
                         Mnemonic.LTR, Mnemonic.LLDT, Mnemonic.INVLPG, Mnemonic.WBINVD,
                         Mnemonic.SWAPGS, Mnemonic.HLT, Mnemonic.CLI, Mnemonic.STI,
                         Mnemonic.CLTS, Mnemonic.INVPCID, Mnemonic.WRFSBASE, Mnemonic.WRGSBASE,
                         Mnemonic.LKGS, Mnemonic.ERETS, Mnemonic.ERETU}
_CONTROL_MOVES = {Code.MOV_CR_R32, Code.MOV_CR_R64, Code.MOV_R32_CR, Code.MOV_R64_CR,
                  Code.MOV_DR_R32, Code.MOV_DR_R64, Code.MOV_R32_DR, Code.MOV_R64_DR}
_FAR_CODES = {Code.JMP_M1616, Code.JMP_M1632, Code.JMP_M1664, Code.JMP_PTR1616,
              Code.JMP_PTR1632, Code.RETFD, Code.RETFD_IMM16, Code.RETFQ, Code.RETFQ_IMM16,
              Code.RETFW, Code.RETFW_IMM16}
_COPY_CODES = {Code.MOVSB_M8_M8, Code.MOVSW_M16_M16, Code.MOVSD_M32_M32, Code.MOVSQ_M64_M64}
_CODE_COUNT = 1 + max(getattr(Code, n) for n in dir(Code) if n.isupper())


@cache
def categories() -> list[int]:
    """Category bits (MEMORY, TRACKED, ...) indexed by iced `Code` value."""
    from iced_x86 import OpCodeOperandKind as K

    memory_kinds = {getattr(K, n) for n in dir(K) if n.startswith("MEM") or "_OR_MEM" in n}
    immediate_kinds = {getattr(K, n) for n in dir(K) if n.startswith("IMM")}
    out = []
    for code in range(_CODE_COUNT):
        info = OpCodeInfo(code)
        bits = PLAIN
        if any(info.op_kind(i) in memory_kinds for i in range(info.op_count)):
            bits |= MEMORY
        if info.mnemonic in _TRACKED_MNEMONICS:
            bits |= TRACKED
        if info.mnemonic in _FLAGS_ONLY_MNEMONICS:
            bits |= FLAGS_ONLY
        if info.mnemonic in _PRIVILEGED_MNEMONICS or code in _CONTROL_MOVES:
            bits |= PRIVILEGED
        if code in _FAR_CODES:
            bits |= FAR
        if any(info.op_kind(i) in immediate_kinds for i in range(info.op_count)):
            bits |= IMMEDIATE
        if info.mnemonic in (Mnemonic.PUSH, Mnemonic.POP):
            bits |= STACK
        if code in _COPY_CODES:
            bits |= COPY
        out.append(bits)
    return out


def decoder(mode: int, data: bytes, ip: int) -> Decoder:
    """An iced decoder over `data`, which starts at address `ip`."""
    return Decoder(mode, data, DecoderOptions.NONE, ip)


def instructions(mode: int, data: bytes, ip: int) -> Iterator[Instruction]:
    """A linear sweep of `data`. An invalid opcode decodes as one INVALID instruction, which
    may take the bytes after it (`06 c3` is one 2-byte instruction; objdump: `(bad)`, `ret`)."""
    return iter(decoder(mode, data, ip))


def sweep(mode: int, data: bytes, ip: int) -> list[int]:
    """Instruction start addresses of a linear sweep."""
    return [ins.ip for ins in decoder(mode, data, ip)]


@cache
def _formatter() -> Formatter:
    fmt = Formatter(FormatterSyntax.INTEL)
    fmt.space_after_operand_separator = True
    fmt.hex_prefix = "0x"
    fmt.hex_suffix = ""
    fmt.uppercase_hex = False
    fmt.rip_relative_addresses = True
    fmt.show_branch_size = False
    fmt.branch_leading_zeros = False
    fmt.displacement_leading_zeros = False
    fmt.leading_zeros = False
    fmt.memory_size_options = 0
    return fmt


def instruction_text(read, address: int, mode: int) -> str:
    """The instruction at an address, in Intel syntax (for people: the decoder's hot loop
    never formats); `read(address, size)` gives the image's bytes or None. Near the end
    of a section the longest read that fits is taken: a shorter one cuts the instruction."""
    for size in range(15, 0, -1):
        data = read(address, size)
        if data:
            return text(decoder(mode, bytes(data), address).decode())
    return ""


def text(ins: Instruction) -> str:
    """Intel syntax, as objdump -M intel and capstone print it (`mov rax, cr4`)."""
    return _formatter().format(ins)
