"""Inlined helpers and declaration sites of chosen functions, read from a vmlinux's DWARF.

A static inline such as ``cr4_init_shadow`` leaves no call edge, only a
``DW_TAG_inlined_subroutine`` in its caller's DIE. `DwarfIndex` maps each address to its
compile unit (``.debug_aranges``, else the units' own code ranges), indexes that unit once
with the byte-level reader of `dwarf_reader` (its functions with code: ranges, declaration
file and line, the inlined subroutines below each) and keeps the index in the on-disk
cache, keyed by the build and the layout of its debug sections. A later run answers from
the cache without reading the DWARF at all: on Debian 6.1 `why --entry xen-pv
cr4_init_shadow` touches 329 of 2172 units.

Malformed DWARF is one EntrycheckError line (`FILE: malformed DWARF: ...`); callers that
can answer without DWARF catch it.
"""

from __future__ import annotations

import bisect
import struct
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from entrycheck import cache
from entrycheck.binary.dwarf_reader import SECTIONS, SHT_PROGBITS, DwarfFormatError, Reader
from entrycheck.binary.image import SHT_NOBITS, Image
from entrycheck.errors import EntrycheckError

INDEX_FORMAT = "dwarf-index/2"
_BAD_DWARF = (DwarfFormatError, IndexError, ValueError, KeyError, TypeError, struct.error,
              OverflowError, RecursionError, MemoryError)
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


class _UnitIndex:
    """One unit's functions, from `Reader.index_unit` data (fresh or from the cache); a
    function's rows become objects when it is asked for."""

    def __init__(self, data: dict, fresh: bool = False):
        self.fresh = fresh  # indexed from DWARF in this run (else read from the cache)
        self.strings: list[str] = data["strings"]
        self.rows: list[list] = data["functions"]
        self.comp_dir: str | None = data.get("comp_dir")
        if self.comp_dir is not None and not isinstance(self.comp_dir, str):
            raise TypeError("comp_dir is not a string")
        self.by_start: dict[int, int] = {}
        for i, row in enumerate(self.rows):
            for lo, _ in row[0]:
                self.by_start.setdefault(lo, i)

    def function_at(self, addr: int) -> tuple[str | None, SourceLocation | None,
                                              list[Inlined]] | None:
        """(name, declaration, inlines) of the function starting at addr, else of the
        first one whose code covers it."""
        i = self.by_start.get(addr)
        if i is None:
            i = next((j for j, row in enumerate(self.rows)
                      if any(lo <= addr < hi for lo, hi in row[0])), None)
        if i is None:
            return None
        ranges, name, file, line, flat = self.rows[i]
        text, base = self.strings, ranges[0][0]
        inlines = [Inlined(text[flat[j]], None if flat[j + 1] is None else text[flat[j + 1]],
                           flat[j + 2], None if flat[j + 3] is None else base + flat[j + 3])
                   for j in range(0, len(flat) - 3, 4)]
        return (None if name is None else text[name],
                None if file is None else SourceLocation(text[file], line), inlines)

    def names(self) -> set[str]:
        return {self.strings[i] for row in self.rows for i in (row[1], *row[4][::4])
                if i is not None}


class DwarfIndex:
    """Per-address answers from a vmlinux's DWARF, indexed per compile unit and cached."""

    def __init__(self, path: Path | str, cache_dir: Path | None = None):
        self.path = Path(path)
        self.cache_dir = cache_dir
        self._image: Image | None = None
        self._reader: Reader | None = None
        self._key: list[str] | None = None
        self._aranges: Table | None = None
        self._cu_scan: Table | None = None
        self._units: dict[int, _UnitIndex] = {}
        self.indexed = 0  # units indexed from the DWARF in this run (the rest: from the cache)

    def close(self) -> None:
        """Drop the section copies; the index can still answer from memory and the cache."""
        self._reader = None
        self._image = None

    # -- public ------------------------------------------------------------------

    @property
    def available(self) -> bool:
        """True if the ELF has a non-empty .debug_info (reads section headers only)."""
        sec = self._open().section(".debug_info")
        return sec is not None and sec.size > 0 and sec.type != SHT_NOBITS

    def inlined_in(self, addresses: dict[str, int]) -> dict[str, list[Inlined]]:
        """Name -> inlined subroutines (nested ones too, DIE order) in the function at its
        start address. Functions without a DW_TAG_subprogram DIE are left out."""
        out: dict[str, list[Inlined]] = {}
        for name, addr in addresses.items():
            function = self._function(addr)
            if function is not None:
                out[name] = function[2]
        return out

    def locations(self, addresses: dict[str, int]) -> dict[str, SourceLocation]:
        """Name -> declaration file/line of the function at that address (absent if unknown)."""
        out: dict[str, SourceLocation] = {}
        for name, addr in addresses.items():
            function = self._function(addr)
            if function is not None and function[1] is not None:
                out[name] = function[1]
        return out

    def source_roots(self) -> list[str]:
        """Where the file names of the units asked so far start: the build directory
        (DW_AT_comp_dir) most of them name first (Debian: debian/build/build_amd64_none_
        cloud-amd64, which C file names are relative to), then the source tree an absolute
        build directory of the others implies (the assembler's units name their files
        /build/.../linux-6.1.192/arch/..., under a comp_dir that ends in the first one)."""
        dirs = Counter(u.comp_dir for u in self._units.values() if u.comp_dir)
        if not dirs:
            return []
        main = dirs.most_common(1)[0][0]
        roots = [main]
        tail = "/" + main.strip("/")
        for other in dirs:
            if other.startswith("/") and other.rstrip("/").endswith(tail) and other != main:
                roots.append(other.rstrip("/")[: -len(tail)] or "/")
        return roots

    def names(self) -> set[str]:
        """Function and inlined-helper names of the units indexed so far."""
        return {n for unit in self._units.values() for n in unit.names()}

    # -- the file ------------------------------------------------------------------

    def _open(self) -> Image:
        if self._image is None:
            self._image = Image(self.path)
        return self._image

    def _cache_key(self) -> list[str]:
        """The build (build-id, else path, size and time) and the debug sections' layout:
        a copy with other DWARF under the same build-id is another index."""
        if self._key is None:
            image = self._open()
            identity = image.build_id
            if identity is None:
                st = self.path.stat()
                identity = f"{self.path.resolve()}:{st.st_size}:{st.st_mtime_ns}"
            layout = [f"{n}:{s.type}:{s.offset}:{s.size}" for n in SECTIONS
                      if (s := image.section(n)) is not None]
            self._key = [INDEX_FORMAT, identity, *layout]
        return self._key

    def _dwarf(self) -> Reader:
        """The reader over copies of the debug sections (read on first need only)."""
        if self._reader is None:
            if not self.available:
                raise EntrycheckError(f"{self.path}: no DWARF (.debug_info); use the -dbg "
                                      "vmlinux")
            image, sections = self._open(), {}
            for name in SECTIONS:
                sec = image.section(name)
                if sec is None or sec.type == SHT_NOBITS:
                    continue
                if sec.type != SHT_PROGBITS:
                    if name == ".debug_aranges":  # optional: the units' ranges stand in
                        continue
                    raise self._malformed(f"section {name} has type {sec.type}, not PROGBITS")
                data = image.section_bytes(sec)
                sections[name] = data if name == ".debug_info" else bytes(data)
            self._reader = Reader(sections)
        return self._reader

    def _malformed(self, reason: object) -> EntrycheckError:
        text = str(reason) or type(reason).__name__
        return EntrycheckError(f"{self.path}: malformed DWARF: {text[:160]}")

    # -- units -----------------------------------------------------------------------

    def _function(self, addr: int) -> tuple[str | None, SourceLocation | None,
                                            list[Inlined]] | None:
        offset = self._cu_at(addr)
        if offset is None:
            return None
        unit = self._unit(offset)
        try:
            return unit.function_at(addr)
        except (IndexError, KeyError, TypeError, ValueError):
            if unit.fresh:
                raise self._malformed(f"index of the unit at {offset:#x} is inconsistent") \
                    from None
        # a cache entry of the right shape and the wrong contents: index the unit again
        return self._unit(offset, fresh=True).function_at(addr)

    def _cu_at(self, addr: int) -> int | None:
        """The CU whose code covers addr: .debug_aranges first, then the units' ranges."""
        if self._aranges is None:
            try:
                self._aranges = self._table("aranges", lambda r: r.aranges())
            except EntrycheckError:  # a broken .debug_aranges: the units' own ranges stand in
                self._aranges = ([], [])
        offset = _lookup(self._aranges, addr)
        if offset is None:
            if self._cu_scan is None:
                self._cu_scan = self._table("unit-ranges", lambda r: r.unit_ranges())
            offset = _lookup(self._cu_scan, addr)
        return offset

    def _table(self, kind: str, build) -> Table:
        key = [*self._cache_key(), kind]
        rows = cache.load("dwarf", key, self.cache_dir)
        if not _valid_rows(rows):
            try:
                rows = [list(r) for r in build(self._dwarf())]
            except _BAD_DWARF as exc:
                raise self._malformed(exc) from None
            cache.store("dwarf", key, rows, self.cache_dir)
        return _index([tuple(r) for r in rows])

    def _unit(self, offset: int, fresh: bool = False) -> _UnitIndex:
        """The index of the unit at offset: from memory, the cache, or (`fresh`) DWARF."""
        if fresh or offset not in self._units:
            key = [*self._cache_key(), "unit", str(offset)]
            unit = None if fresh else _from_cache(cache.load("dwarf", key, self.cache_dir))
            if unit is None:
                try:
                    data = self._dwarf().index_unit(offset)
                    unit = _UnitIndex(data, fresh=True)
                except _BAD_DWARF as exc:
                    raise self._malformed(exc) from None
                self.indexed += 1
                cache.store("dwarf", key, data, self.cache_dir)
            self._units[offset] = unit
        return self._units[offset]


def _from_cache(data: object) -> _UnitIndex | None:
    """A unit index from cached data, or None if it is not one."""
    if not isinstance(data, dict):
        return None
    try:
        return _UnitIndex(data)
    except (KeyError, TypeError, ValueError, IndexError):
        return None


def _valid_rows(rows: object) -> bool:
    return isinstance(rows, list) and all(
        isinstance(r, list) and len(r) == 3 and all(isinstance(v, int) for v in r) for r in rows)


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
