"""Inlined helpers and declaration sites of chosen functions, read from a vmlinux's DWARF.

A static inline such as ``cr4_init_shadow`` leaves no call edge, only a
``DW_TAG_inlined_subroutine`` in its caller's DIE. Parsing all of a distro vmlinux's DWARF
(Debian 6.1: 164 MB of .debug_info) in Python is far too slow, so `DwarfIndex` maps each
address to its compile unit with ``.debug_aranges`` and parses only those CUs: their
top-level DIEs (hopping DW_AT_sibling) and the subtree of each function asked for.
Sections are read without applying ``.rela.debug_*`` (a linked vmlinux holds final values;
pyelftools would apply ~10 million relocations in Python).
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
        """(start, end, CU offset) rows of .debug_aranges (~0.06 s on Debian 6.1)."""
        aranges = self._info.get_aranges()
        entries = aranges.entries if aranges is not None else []
        return [(e.begin_addr, e.begin_addr + e.length, e.info_offset) for e in entries if e.length]

    def _scan_cus(self) -> list[tuple[int, int, int]]:
        """Fallback when an address is not in .debug_aranges: the code ranges of every CU,
        from its unit header and top DIE (DW_AT_low_pc/high_pc/ranges) only, decoded here
        with a byte-level reader because pyelftools parses a CU's whole abbrev table first
        (17 s for Debian 6.1's 2172 CUs). Runs once per index; cost grows with the number
        and abbrev-table size of the CUs, not with .debug_info: ~1 s on Debian 6.1 (same
        5921 ranges as its .debug_aranges). Units whose top DIE uses addrx/rnglistx (clang)
        go through pyelftools, at that ~8 ms per CU."""
        info = self._info.debug_info_sec.stream.getbuffer()
        abbrevs = self._info.debug_abbrev_sec.stream.getbuffer()
        rows, off = [], 0
        while off + 4 <= len(info):
            length, offsz = int.from_bytes(info[off : off + 4], "little"), 4
            if length == 0xFFFFFFFF:
                length, offsz = int.from_bytes(info[off + 4 : off + 12], "little"), 8
            pcs = _top_die_pcs(info, abbrevs, off, offsz) if self._open().little_endian else None
            if pcs is None:  # forms not decoded by hand: let pyelftools do it
                ranges = self._ranges(self._info.get_CU_at(off).get_top_DIE())
            elif pcs[2] is not None:
                ranges = self._rangelist(self._info.get_CU_at(off), pcs[2], pcs[0] or 0)
            else:
                ranges = _span(pcs[0], pcs[1])
            rows += [(lo, hi, off) for lo, hi in ranges]
            off += length + (4 if offsz == 4 else 12)
        return rows

    def _ranges(self, die: DIE) -> list[Range]:
        """Non-empty [start, end) ranges of a DIE's code, in the order DWARF lists them."""
        attrs = die.attributes
        if "DW_AT_ranges" in attrs:
            top = die.cu.get_top_DIE().attributes
            base = top["DW_AT_low_pc"].value if "DW_AT_low_pc" in top else 0
            return self._rangelist(die.cu, attrs["DW_AT_ranges"].value, base)
        low, high = attrs.get("DW_AT_low_pc"), attrs.get("DW_AT_high_pc")
        if low is None or high is None or high.form.startswith("DW_FORM_addr"):
            return _span(low and low.value, high and high.value)
        return _span(low.value, low.value + high.value)

    def _rangelist(self, cu: CompileUnit, offset: int, base: int) -> list[Range]:
        """A .debug_ranges/.debug_rnglists list, rebased to absolute addresses."""
        out = []
        for e in self._info.range_lists().get_range_list_at_offset(offset, cu=cu):
            if isinstance(e, BaseAddressEntry):
                base = e.base_address
            elif e.end_offset > e.begin_offset:
                rebase = 0 if e.is_absolute else base
                out.append((rebase + e.begin_offset, rebase + e.end_offset))
        return out

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


def _span(low: int | None, high: int | None) -> list[Range]:
    """[low, high) as a range list; [low, low + 1) without high, [] without low."""
    return [] if low is None else [(low, low + 1 if high is None else high)]


# Sizes of the DWARF forms a CU's top DIE may use, by form code: bytes, or "o" offset size,
# "a" address size, "u" LEB128, "s" NUL-terminated string. Others: pyelftools decodes.
_FORMS: dict[int, int | str] = {
    0x19: 0, 0x21: 0, 0x0B: 1, 0x0C: 1, 0x11: 1, 0x25: 1, 0x29: 1, 0x05: 2, 0x12: 2, 0x26: 2,
    0x2A: 2, 0x27: 3, 0x2B: 3, 0x06: 4, 0x13: 4, 0x1C: 4, 0x28: 4, 0x2C: 4, 0x07: 8, 0x14: 8,
    0x20: 8, 0x24: 8, 0x1E: 16, 0x0E: "o", 0x10: "o", 0x17: "o", 0x1D: "o", 0x1F: "o",
    0x01: "a", 0x0D: "u", 0x0F: "u", 0x15: "u", 0x1A: "u", 0x1B: "u", 0x22: "u", 0x23: "u",
    0x08: "s",
}  # fmt: skip
_PC_FORMS = {0x01: True, 0x0B: False, 0x05: False, 0x06: False, 0x07: False}  # -> is address
_AT_LOW_PC, _AT_HIGH_PC, _AT_RANGES, _FORM_SEC_OFFSET = 0x11, 0x12, 0x55, 0x17


def _uleb(data: Any, pos: int) -> tuple[int, int]:
    """(value, next position) of the LEB128 at pos (SLEB values are only skipped)."""
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, pos


def _abbrev_specs(abbrevs: Any, pos: int, code: int) -> list[tuple[int, int]] | None:
    """(attribute, form) pairs of abbrev declaration `code` in the table at pos."""
    while True:
        acode, pos = _uleb(abbrevs, pos)
        if acode == 0:
            return None
        pos = _uleb(abbrevs, pos)[1] + 1  # tag, children flag
        specs = []
        while True:
            attr, pos = _uleb(abbrevs, pos)
            form, pos = _uleb(abbrevs, pos)
            if form == 0x21:  # implicit_const: value in the declaration
                pos = _uleb(abbrevs, pos)[1]
            if attr == 0 and form == 0:
                break
            specs.append((attr, form))
        if acode == code:
            return specs


def _top_die_pcs(
    info: Any, abbrevs: Any, off: int, offsz: int
) -> tuple[int | None, int | None, int | None] | None:
    """(low_pc, absolute high_pc, DW_AT_ranges offset) of the unit at off, read from its
    header and top DIE (little-endian); None for forms not handled here."""
    pos = off + (4 if offsz == 4 else 12)
    version = int.from_bytes(info[pos : pos + 2], "little")
    pos += 2
    if version >= 5:
        if info[pos] not in (1, 3):  # not DW_UT_compile/partial: no code of its own
            return None, None, None
        asize, pos = info[pos + 1], pos + 2
    abbrev_off = int.from_bytes(info[pos : pos + offsz], "little")
    pos += offsz
    if version < 5:
        asize, pos = info[pos], pos + 1
    code, pos = _uleb(info, pos)
    specs = _abbrev_specs(abbrevs, abbrev_off, code)
    if specs is None:
        return None
    vals: dict[int, tuple[int, bool]] = {}
    for attr, form in specs:
        size, start = _FORMS.get(form), pos
        if size is None:
            return None
        if isinstance(size, int):
            pos += size
        elif size in ("o", "a"):
            pos += offsz if size == "o" else asize
        elif size == "u":
            pos = _uleb(info, pos)[1]
        else:
            while info[pos]:
                pos += 1
            pos += 1
        if attr in (_AT_LOW_PC, _AT_HIGH_PC, _AT_RANGES):
            if form not in _PC_FORMS and not (attr == _AT_RANGES and form == _FORM_SEC_OFFSET):
                return None  # addrx, rnglistx...: would need the unit's base attributes
            vals[attr] = (int.from_bytes(info[start:pos], "little"), _PC_FORMS.get(form, False))
    low = vals[_AT_LOW_PC][0] if _AT_LOW_PC in vals else None
    high, high_is_addr = vals.get(_AT_HIGH_PC, (None, True))
    if high is not None and not high_is_addr and low is not None:
        high += low
    return low, high, vals[_AT_RANGES][0] if _AT_RANGES in vals else None


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


def _descendants(die: DIE) -> Iterator[DIE]:
    """All DIEs below die, in pre-order (DIE order)."""
    for child in die.iter_children():
        yield child
        yield from _descendants(child)


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
