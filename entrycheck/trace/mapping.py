"""Boot tracing: which vmlinux functions really ran during an early boot under QEMU (TCG).

QEMU's ``-d in_asm`` log lists every translated block, instruction by instruction, the
first time the block is about to run. TCG translates on demand, so the order of first
translations is the order of first execution (a block retranslated later, after a
code patch or a cache flush, only repeats itself). Every instruction address of a block
is mapped, so a block that falls through from one symbol into the next (an inner label
such as ``secondary_startup_64_no_verify``) credits both.

Addresses are virtual once paging is on and physical before (``pvh_start_xen``, the
identity-mapped start of ``startup_64``); physical ones are mapped through the PT_LOAD
headers. With ``nokaslr`` the kernel runs at its link address. Blocks before the
vmlinux entry point (firmware, option ROM, the bzImage's setup code and decompressor)
are counted as unmapped and never credited, even when they land inside the vmlinux's
load range.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from entrycheck.binary.functions import Function
from entrycheck.errors import EntrycheckError

INIT_END = "init-end"
ENTRIES = ("native", "pvh")  # what a QEMU boot can enter through
_INSN = re.compile(r"^0x([0-9a-fA-F]+):")



class FunctionLookup(Protocol):
    """What mapping needs from a FunctionTable (tests pass a stub)."""

    def at(self, addr: int) -> Function | None: ...

    def named(self, name: str) -> Function | None: ...


class PhysMap(Protocol):
    """What mapping needs from an Image (tests pass a stub)."""

    def phys_to_virt(self, paddr: int) -> int | None: ...

    def is_code(self, addr: int) -> bool: ...


@dataclass
class TraceResult:
    """Functions of one boot in first-execution order, and how the trace ended."""

    functions: list[str] = field(default_factory=list)
    addresses: dict[str, int] = field(default_factory=dict)
    first_index: dict[str, int] = field(default_factory=dict)
    physical: set[str] = field(default_factory=set)
    blocks: int = 0
    unmapped_blocks: int = 0
    unnamed_blocks: int = 0
    reached_until: bool = False
    until: str | None = None
    entry: str = ""
    kernel: str = ""
    build_id: str | None = None
    seconds: float | None = None
    log_bytes: int | None = None
    command: list[str] = field(default_factory=list)

    @property
    def reached_start_kernel(self) -> bool:
        return "start_kernel" in self.first_index

    def order(self, name: str) -> int | None:
        """First-execution rank of a function, or None when it never ran."""
        try:
            return self.functions.index(name)
        except ValueError:
            return None


# -- parsing ---------------------------------------------------------------------------


class InAsmParser:
    """Incremental parser of a ``-d in_asm`` log: lines in, finished blocks out."""

    def __init__(self) -> None:
        self._block: list[int] | None = None

    def feed(self, lines: Iterable[str]) -> list[list[int]]:
        """Blocks (lists of instruction addresses) completed by these lines."""
        done: list[list[int]] = []
        for line in lines:
            if line.startswith("IN:"):
                self._flush(done)
                self._block = []
            elif self._block is not None:
                m = _INSN.match(line)
                if m:
                    self._block.append(int(m[1], 16))
                elif not line.strip() or line.startswith("---"):
                    self._flush(done)
        return done

    def close(self) -> list[list[int]]:
        done: list[list[int]] = []
        self._flush(done)
        return done

    def _flush(self, done: list[list[int]]) -> None:
        if self._block:
            done.append(self._block)
        self._block = None


def parse_in_asm_blocks(lines: Iterable[str]) -> list[list[int]]:
    """Every translated block of an in_asm log, as its instruction addresses, in log order."""
    parser = InAsmParser()
    return parser.feed(lines) + parser.close()


def parse_in_asm_log(lines: Iterable[str]) -> list[int]:
    """Start addresses of the translated blocks of an in_asm log, in log order."""
    return [block[0] for block in parse_in_asm_blocks(lines)]


# -- mapping ---------------------------------------------------------------------------


class Mapper:
    """Credits functions block by block; stops at the `until` function."""

    def __init__(self, image: PhysMap, functions: FunctionLookup, entry: int | None,
                 until: str | None):  # fmt: skip
        self.image, self.functions, self.entry = image, functions, entry
        self.until_start: int | None = None
        if until and until != INIT_END:
            func = functions.named(until)
            if func is None:
                raise EntrycheckError(f"trace: no function named {until!r} to stop at")
            self.until_start = func.start
        self.entered = entry is None
        self.mapped_blocks = 0
        self.result = TraceResult(until=until)

    def resolve(self, addr: int) -> tuple[Function | None, int, bool]:
        """(function, virtual address, was physical) of a logged address."""
        func = self.functions.at(addr)
        if func is not None:
            return func, addr, False
        virt = self.image.phys_to_virt(addr)
        if virt is None:
            return None, addr, False
        return self.functions.at(virt), virt, True

    def add(self, block: int | Sequence[int]) -> bool:
        """Take one block; True once the `until` function has run (later blocks are ignored)."""
        res = self.result
        if res.reached_until and self.until_start is not None:
            return True
        addrs = [block] if isinstance(block, int) else block
        index, mapped, unnamed = res.blocks, False, False
        res.blocks += 1
        for addr in addrs:
            func, virt, phys = self.resolve(addr)
            if not self.entered:
                if virt != self.entry:
                    continue
                self.entered = True
            if func is None:
                unnamed = unnamed or self.image.is_code(virt)
                continue
            mapped = True
            if func.name not in res.first_index:
                res.functions.append(func.name)
                res.first_index[func.name] = index
                res.addresses[func.name] = func.start
                if phys:
                    res.physical.add(func.name)
            if func.start == self.until_start:
                res.reached_until = True
                break
        self.mapped_blocks += mapped
        res.unnamed_blocks += unnamed and not mapped
        res.unmapped_blocks = res.blocks - self.mapped_blocks
        return res.reached_until and self.until_start is not None


def map_to_functions(addresses: Iterable[int | Sequence[int]], image: PhysMap,
                     functions: FunctionLookup, *, entry: int | None = None,
                     until: str | None = None) -> TraceResult:  # fmt: skip
    """Map logged blocks (start addresses, or each block's instruction addresses) to functions.

    `entry`: virtual address of the kernel entry point; blocks before the first one that
    runs it are not credited. `until`: a function name; mapping stops after its first block.
    """
    mapper = Mapper(image, functions, entry, until)
    for block in addresses:
        if mapper.add(block):
            break
    return mapper.result
