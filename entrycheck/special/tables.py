"""Special sections: alternatives and jump labels, read from their descriptor tables.

Like objtool's special.c, one generic reader walks a table of fixed-size entries whose
fields are self-relative 32-bit offsets; the layouts are data (they change between kernel
versions: `struct alt_instr` is 12 bytes in 6.1 and 14 from 6.3 on).
"""

from __future__ import annotations

import bisect
import struct
from dataclasses import dataclass

from entrycheck.binary.image import Image


@dataclass(frozen=True)
class TableLayout:
    """Where a descriptor table is and where its fields sit in one entry."""

    section: str | None          # a section of its own...
    start: str | None            # ...or a range between two symbols
    stop: str | None
    sizes: tuple[int, ...]       # possible entry sizes, tried in order
    fields: dict[str, tuple[int, str]]  # name -> (offset, "rel32" | "u8@-2" style)


ALTERNATIVES = TableLayout(".altinstructions", "__alt_instructions", "__alt_instructions_end",
                           (12, 14), {"instr": (0, "rel32"), "repl": (4, "rel32"),
                                      "instrlen": (-2, "u8"), "repllen": (-1, "u8")})
JUMP_LABELS = TableLayout(None, "__start___jump_table", "__stop___jump_table", (16,),
                          {"code": (0, "rel32"), "target": (4, "rel32")})


@dataclass(frozen=True)
class Alternative:
    """Replacement code that may run instead of `length` bytes at `site`."""

    site: int
    replacement: int
    length: int
    original_length: int


def read_table(image: Image, layout: TableLayout) -> list[dict[str, int]]:
    """Decoded entries of a descriptor table; [] when the image has none."""
    bounds = _bounds(image, layout)
    if bounds is None:
        return []
    start, end = bounds
    data = image.read(start, end - start)
    if not data:
        return []
    for size in layout.sizes:
        if len(data) % size == 0:
            entries = [_entry(data, start, off, size, layout)
                       for off in range(0, len(data), size)]
            if all(image.is_code(e[next(iter(layout.fields))]) for e in entries[:64]):
                return entries
    return []


def _bounds(image: Image, layout: TableLayout) -> tuple[int, int] | None:
    if layout.section and (sec := image.section(layout.section)) is not None:
        return sec.addr, sec.addr + sec.size
    start = image.symbol_address(layout.start) if layout.start else None
    stop = image.symbol_address(layout.stop) if layout.stop else None
    if start is None or stop is None or stop <= start:
        return None
    return start, stop


def _entry(data: bytes, base: int, off: int, size: int, layout: TableLayout) -> dict[str, int]:
    out = {}
    for name, (where, kind) in layout.fields.items():
        pos = off + (where if where >= 0 else size + where)
        if kind == "rel32":
            out[name] = (base + pos + struct.unpack_from("<i", data, pos)[0]) & (1 << 64) - 1
        else:
            out[name] = data[pos]
    return out


class SpecialSections:
    """Alternatives and jump-label targets of an image, looked up by function extent."""

    def __init__(self, image: Image):
        alts = sorted((Alternative(e["instr"], e["repl"], e["repllen"], e["instrlen"])
                       for e in read_table(image, ALTERNATIVES)), key=lambda a: a.site)
        self._alts = alts
        self._alt_sites = [a.site for a in alts]
        labels = sorted((e["code"], e["target"]) for e in read_table(image, JUMP_LABELS))
        self._labels = labels
        self._label_sites = [code for code, _ in labels]

    def alternatives_in(self, start: int, end: int) -> list[Alternative]:
        lo = bisect.bisect_left(self._alt_sites, start)
        hi = bisect.bisect_left(self._alt_sites, end)
        return self._alts[lo:hi]

    def jump_label_targets_in(self, start: int, end: int) -> list[int]:
        """Out-of-line code behind static-key NOPs of a function (patched to jumps at run time)."""
        lo = bisect.bisect_left(self._label_sites, start)
        hi = bisect.bisect_left(self._label_sites, end)
        return [target for _, target in self._labels[lo:hi] if start <= target < end]

    def __len__(self) -> int:
        return len(self._alts) + len(self._labels)
