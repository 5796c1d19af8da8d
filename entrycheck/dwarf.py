"""Inlined helpers and declaration sites of chosen functions, read from a vmlinux's DWARF.

A static inline such as ``cr4_init_shadow`` leaves no call edge in the code, only a
``DW_TAG_inlined_subroutine`` inside the DIE of its caller. Walking all of a distro
vmlinux's DWARF (Debian 6.1: 164 MB of .debug_info) in Python takes far too long, so
`DwarfIndex` maps each address to its compile unit through ``.debug_aranges`` (parsed
in bulk with ``struct``, looked up by bisection), parses only those CUs, and in each
one only the top-level DIEs (skipped over by DW_AT_sibling) plus the subtree of the
function asked for.

Sections are read without applying ``.rela.debug_*``: a linked vmlinux already holds
final values there, and pyelftools would otherwise apply ~10 million relocations.
"""

from __future__ import annotations

import bisect
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from elftools.common.exceptions import DWARFError, ELFError
from elftools.construct import ConstructError
from elftools.dwarf.compileunit import CompileUnit
from elftools.dwarf.die import DIE
from elftools.dwarf.dwarfinfo import DWARFInfo
from elftools.dwarf.ranges import BaseAddressEntry
from elftools.elf.elffile import ELFFile

from entrycheck.errors import EntrycheckError

_REFS = ("DW_AT_abstract_origin", "DW_AT_specification")
_MAX_CHAIN = 8
_BAD_DWARF = (ELFError, DWARFError, ConstructError, struct.error, KeyError, IndexError)
Range = tuple[int, int]
Table = tuple[list[int], list[tuple[int, int, int]]]  # sorted starts, (start, end, CU offset)


@dataclass(frozen=True)
class Inlined:
    """One inlined instance of a function inside another function's code."""

    name: str
    call_file: str | None
    call_line: int | None
    low_pc: int | None


@dataclass(frozen=True)
class SourceLocation:
    """Where a function is declared (DW_AT_decl_file/decl_line)."""

    file: str
    line: int | None


class DwarfIndex:
    """Lazy, per-address access to a vmlinux's DWARF; caches parsed CUs in memory only."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self._stream: IO[bytes] | None = None
        self._elf: ELFFile | None = None
        self._dwarf: DWARFInfo | None = None
        self._aranges: Table | None = None
        self._cu_scan: Table | None = None
        self._cu_funcs: dict[int, list[tuple[list[Range], DIE]]] = {}
        self._files: dict[int, dict[int, str]] = {}

    def close(self) -> None:
        """Close the file; the index can no longer be queried."""
        if self._stream is not None:
            self._stream.close()

    # -- public ------------------------------------------------------------------

    @property
    def available(self) -> bool:
        """True if the ELF has a non-empty .debug_info (reads section headers only)."""
        sec = self._open().get_section_by_name(".debug_info")
        return sec is not None and sec.data_size > 0

    def inlined_in(self, addresses: dict[str, int]) -> dict[str, list[Inlined]]:
        """Name -> inlined subroutines (nested ones too, DIE order) in the function at its
        start address. Functions without a DW_TAG_subprogram DIE are left out."""
        out: dict[str, list[Inlined]] = {}
        for name, addr in addresses.items():
            with _errors(self.path):
                die = self._subprogram(addr)
                if die is not None:
                    out[name] = [self._inlined(d) for d in _descendants(die)
                                 if d.tag == "DW_TAG_inlined_subroutine"]  # fmt: skip
        return out

    def locations(self, addresses: dict[str, int]) -> dict[str, SourceLocation]:
        """Name -> declaration file/line of the function at that address (absent if unknown)."""
        out: dict[str, SourceLocation] = {}
        for name, addr in addresses.items():
            with _errors(self.path):
                die = self._subprogram(addr)
                if die is None:
                    continue
                fdie, fattr = _follow(die, "DW_AT_decl_file")
                path = None if fattr is None else self._file(fdie.cu, fattr.value)
                if path is not None:
                    line = _follow(die, "DW_AT_decl_line")[1]
                    out[name] = SourceLocation(path, None if line is None else line.value)
        return out

    # -- ELF and DWARF -----------------------------------------------------------

    def _open(self) -> ELFFile:
        if self._elf is None:
            try:
                self._stream = self.path.open("rb")
                self._elf = ELFFile(self._stream)
            except OSError as exc:
                raise EntrycheckError(f"{self.path}: cannot open: {exc.strerror}") from None
            except ELFError as exc:
                raise EntrycheckError(f"{self.path}: not a readable ELF: {exc}") from None
        return self._elf

    @property
    def _info(self) -> DWARFInfo:
        if self._dwarf is None:
            if not self.available:
                raise EntrycheckError(f"{self.path}: no DWARF (.debug_info); use the -dbg vmlinux")
            self._dwarf = self._open().get_dwarf_info(
                relocate_dwarf_sections=False, follow_links=False
            )
        return self._dwarf

    def _cu_at(self, addr: int) -> CompileUnit | None:
        """The CU whose code covers addr: .debug_aranges first, then the CU-header scan."""
        if self._aranges is None:
            self._aranges = _index(self._read_aranges())
        offset = _lookup(self._aranges, addr)
        if offset is None:
            if self._cu_scan is None:
                self._cu_scan = _index(self._scan_cus())
            offset = _lookup(self._cu_scan, addr)
        return None if offset is None else self._info.get_CU_at(offset)

    def _read_aranges(self) -> list[tuple[int, int, int]]:
        """(start, end, CU offset) rows of .debug_aranges, read with struct in one pass."""
        elf = self._open()
        sec = elf.get_section_by_name(".debug_aranges")
        data = sec.data() if sec is not None else b""
        end_ = "<" if elf.little_endian else ">"
        rows, pos = [], 0
        while pos + 4 <= len(data):
            (length,), off_fmt, hdr = struct.unpack_from(end_ + "I", data, pos), "I", 4
            if length == 0xFFFFFFFF:  # 64-bit DWARF
                (length,), off_fmt, hdr = struct.unpack_from(end_ + "Q", data, pos + 4), "Q", 12
            unit_end = pos + hdr + length
            p = pos + hdr + 2  # skip version
            (cu_off,) = struct.unpack_from(end_ + off_fmt, data, p)
            p += struct.calcsize(off_fmt)
            asize, ssize = data[p], data[p + 1]
            p += 2
            tup = 2 * asize + ssize
            p = pos + -(-(p - pos) // tup) * tup  # tuples are aligned to their size
            pair = end_ + ("QQ" if asize == 8 else "II")
            while p + tup <= unit_end:
                start, size = struct.unpack_from(pair, data, p + ssize)
                p += tup
                if start == 0 and size == 0:
                    break
                if size:
                    rows.append((start, start + size, cu_off))
            pos = unit_end
        return rows

    def _scan_cus(self) -> list[tuple[int, int, int]]:
        """Fallback when an address is not in .debug_aranges: the code ranges of every CU,
        from each unit header and its top DIE only (DW_AT_low_pc/high_pc/ranges), never
        the DIEs below. Runs once per index; cost grows with the number of CUs (one header,
        one DIE and maybe one range list each), not with the size of .debug_info."""
        rows = []
        for cu in self._info.iter_CUs():
            rows += [(lo, hi, cu.cu_offset) for lo, hi in self._ranges(cu.get_top_DIE())]
        return rows

    def _ranges(self, die: DIE) -> list[Range]:
        """[start, end) ranges of a DIE's code, in the order DWARF lists them."""
        attrs = die.attributes
        if "DW_AT_ranges" in attrs:
            top = die.cu.get_top_DIE()
            base = top.attributes["DW_AT_low_pc"].value if "DW_AT_low_pc" in top.attributes else 0
            out = []
            lists = self._info.range_lists()
            for e in lists.get_range_list_at_offset(attrs["DW_AT_ranges"].value, cu=die.cu):
                if isinstance(e, BaseAddressEntry):
                    base = e.base_address
                elif e.end_offset > e.begin_offset:
                    rebase = 0 if e.is_absolute else base
                    out.append((rebase + e.begin_offset, rebase + e.end_offset))
            return out
        if "DW_AT_low_pc" not in attrs:
            return []
        low = attrs["DW_AT_low_pc"].value
        high = attrs.get("DW_AT_high_pc")
        if high is None:
            return [(low, low + 1)]
        return [(low, high.value if high.form.startswith("DW_FORM_addr") else low + high.value)]

    # -- functions, inlines, files -------------------------------------------------

    def _subprogram(self, addr: int) -> DIE | None:
        """The top-level DW_TAG_subprogram starting at addr (else the one covering it)."""
        cu = self._cu_at(addr)
        if cu is None:
            return None
        if cu.cu_offset not in self._cu_funcs:
            funcs = []
            for die in cu.get_top_DIE().iter_children():
                if die.tag == "DW_TAG_subprogram":
                    ranges = self._ranges(die)
                    if ranges:
                        funcs.append((ranges, die))
            self._cu_funcs[cu.cu_offset] = funcs
        funcs = self._cu_funcs[cu.cu_offset]
        for ranges, die in funcs:
            if any(lo == addr for lo, _ in ranges):
                return die
        for ranges, die in funcs:
            if any(lo <= addr < hi for lo, hi in ranges):
                return die
        return None

    def _inlined(self, die: DIE) -> Inlined:
        _, name = _follow(die, "DW_AT_name")
        file, line = die.attributes.get("DW_AT_call_file"), die.attributes.get("DW_AT_call_line")
        ranges = self._ranges(die)
        return Inlined(
            _text(name.value) if name is not None else "<unknown>",
            None if file is None else self._file(die.cu, file.value),
            None if line is None else line.value,
            ranges[0][0] if ranges else None,  # first non-empty range
        )

    def _file(self, cu: CompileUnit, index: int) -> str | None:
        """A DW_AT_decl_file/call_file index resolved through the CU's line-program file
        table: directory joined to the name, relative paths to DW_AT_comp_dir, "."
        components dropped (no filesystem access, ".." kept)."""
        if cu.cu_offset not in self._files:
            table: dict[int, str] = {}
            lineprog = self._info.line_program_for_CU(cu)
            if lineprog is not None:
                top = cu.get_top_DIE().attributes
                comp_dir = _text(top["DW_AT_comp_dir"].value) if "DW_AT_comp_dir" in top else ""
                v5 = lineprog.header.version >= 5
                dirs = [_text(d) for d in lineprog.header.include_directory]
                # DWARF 5 lists the comp dir as directory 0; before 5 it is implicit.
                base = dirs.pop(0) if v5 and dirs else comp_dir
                dirs = [base] + [_join(base, d) for d in dirs]
                for i, entry in enumerate(lineprog.header.file_entry):
                    d = dirs[entry.dir_index] if entry.dir_index < len(dirs) else base
                    table[i if v5 else i + 1] = _join(d, _text(entry.name))
            self._files[cu.cu_offset] = table
        return self._files[cu.cu_offset].get(index)


def _index(rows: list[tuple[int, int, int]]) -> Table:
    rows.sort()
    return [r[0] for r in rows], rows


def _lookup(table: Table, addr: int) -> int | None:
    """CU offset of the row covering addr: bisect on starts, then look a few rows back
    in case an earlier, longer row overlaps."""
    starts, rows = table
    i = bisect.bisect_right(starts, addr) - 1
    for j in range(i, max(i - 4, -1), -1):
        if addr < rows[j][1]:
            return rows[j][2]
    return None


def _follow(die: DIE, attr: str) -> tuple[DIE, Any]:
    """(DIE holding attr, its AttributeValue or None), following abstract_origin and
    specification references; the DIE matters because file indexes are per CU."""
    for _ in range(_MAX_CHAIN):
        if attr in die.attributes:
            return die, die.attributes[attr]
        ref = next((r for r in _REFS if r in die.attributes), None)
        if ref is None:
            break
        die = die.get_DIE_from_attribute(ref)
    return die, None


def _descendants(die: DIE) -> list[DIE]:
    """All DIEs below die, in pre-order (DIE order)."""
    out: list[DIE] = []
    stack = list(reversed(list(die.iter_children())))
    while stack:
        d = stack.pop()
        out.append(d)
        stack.extend(reversed(list(d.iter_children())))
    return out


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _join(*parts: str) -> str:
    """posixpath-style join (an absolute part restarts the path), then drop "." parts."""
    path = ""
    for part in parts:
        path = part if part.startswith("/") or not path else f"{path}/{part}" if part else path
    kept = [p for p in path.split("/") if p not in ("", ".")]
    return ("/" if path.startswith("/") else "") + "/".join(kept) or "."


@contextmanager
def _errors(path: Path) -> Iterator[None]:
    """Turn pyelftools' errors on malformed DWARF into one-line EntrycheckErrors."""
    try:
        yield
    except _BAD_DWARF as exc:
        raise EntrycheckError(f"{path}: malformed DWARF: {exc}") from None
