"""One generic reader for the kernel's descriptor tables, driven by layouts in the data.

Like objtool's special.c, a table is a run of fixed-size entries (in a section of its own
or between two symbols) whose fields are self-relative 32-bit offsets (`rel32`),
absolute pointers (`ptr`, read through relocations where the image keeps them) or small
integers. Layouts change between kernel versions (`struct alt_instr` is 12 bytes in 6.1
and 14 from 6.3 on; `struct bug_entry` grew a format field in 7.x), so each table lists
its layouts with the versions they hold for. A layout is taken only when the table's
size is a multiple of its entry size and its first entries point where they must (into
code); when none fits, the reader says so instead of returning nothing.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from entrycheck.binary.image import Image
from entrycheck.knowledge import TableLayout, TableSpec, version_in

MASK64 = (1 << 64) - 1
CHECKED_ENTRIES = 64
MAX_TABLE_BYTES = 64 << 20
_RELATIVE = {"rel32": "<i", "rel64": "<q"}  # self-relative: the field's address plus it
_INTS = {"u8": "<B", "u16": "<H", "u32": "<I", "s32": "<i", "u64": "<Q"}


@dataclass
class Table:
    """The decoded entries of one table, and how they were read."""

    name: str
    entries: list[dict[str, int]] = field(default_factory=list)
    count: int = 0                  # entries in the table (all decoded only when asked)
    layout: str | None = None       # the layout used (its versions), None when absent/unfit
    problem: str | None = None      # why nothing was read although the table is there

    def as_json(self) -> dict:
        out: dict = {"name": self.name, "entries": self.count, "layout": self.layout}
        if self.problem:
            out["problem"] = self.problem
        return out


def read_table(image: Image, spec: TableSpec, version: tuple[int, ...] | None,
               decode: bool = True) -> Table:
    """The entries of a table (only counted and checked unless `decode`); `problem` says
    why none were read when the table is there."""
    bounds = _bounds(image, spec)
    if bounds is None:
        return Table(spec.name)
    start, end = bounds
    if end == start:  # its bounds may sit at a section's end, outside every section
        return Table(spec.name, layout="empty")
    if end - start > MAX_TABLE_BYTES:
        return Table(spec.name, problem=f"{end - start} bytes: larger than any kernel's table")
    data = image.read(start, end - start)
    if data is None:
        return Table(spec.name, problem=f"{start:#x}..{end:#x} is not inside one section")
    matching = [lay for lay in spec.layouts if version is None or version_in(version, lay.versions)]
    others = [lay for lay in spec.layouts if lay not in matching]
    tried = []
    for layout in [*matching, *others]:
        tried.append(f"{layout.size} bytes ({layout.versions})")
        if len(data) % layout.size:
            continue
        offsets = range(0, len(data), layout.size)
        first = [_entry(image, data, start, off, layout) for off in offsets[:CHECKED_ENTRIES]]
        if spec.sparse or _plausible(image, first, spec):
            name = layout.versions if layout in matching else \
                f"{layout.versions}, although the kernel is {'.'.join(map(str, version or ()))}"
            entries = [_entry(image, data, start, off, layout) for off in offsets] if decode \
                else []
            if spec.sparse:  # a region of structs scanned for pointers into code
                entries = [e for e in entries if all(image.is_code(e[f])
                                                     for f in spec.code_fields)]
            return Table(spec.name, entries, len(offsets), name)
    return Table(spec.name, problem=f"no layout fits its {len(data)} bytes "
                                    f"(tried {'; '.join(tried)})")


def _bounds(image: Image, spec: TableSpec) -> tuple[int, int] | None:
    if spec.section and (sec := image.section(spec.section)) is not None:
        return sec.addr, sec.addr + sec.size
    start = image.symbol_address(spec.start) if spec.start else None
    stop = image.symbol_address(spec.stop) if spec.stop else None
    if start is None or stop is None or stop < start:
        return None
    return start, stop


def _entry(image: Image, data: bytes, base: int, off: int, layout: TableLayout) -> dict[str, int]:
    out = {}
    for name, (where, kind) in layout.fields.items():
        pos = off + where
        if kind in _RELATIVE:
            out[name] = (base + pos + struct.unpack_from(_RELATIVE[kind], data, pos)[0]) & MASK64
        elif kind == "ptr":
            addr = base + pos
            reloc = image.relocation_target(addr)
            out[name] = reloc if reloc is not None else \
                int.from_bytes(data[pos : pos + image.bits // 8], "little")
        else:
            out[name] = struct.unpack_from(_INTS[kind], data, pos)[0]
    return out


def _plausible(image: Image, entries: list[dict[str, int]], spec: TableSpec) -> bool:
    """The first entries' checked fields point into code (or are null where allowed)."""
    for entry in entries:
        for name in spec.code_fields:
            if not image.is_code(entry[name]):
                return False
    return True
