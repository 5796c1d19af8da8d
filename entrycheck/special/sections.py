"""The special sections of one image, read through their layouts and looked up by address:
alternatives, jump labels, WARN sites, exception fixups and the linker tables the kernel
walks (initcalls, setup parameters, cpu_dev and apic driver pointers)."""

from __future__ import annotations

import bisect
import re
from functools import cached_property
from typing import NamedTuple

from entrycheck.binary.image import Image
from entrycheck.knowledge import Knowledge, TableSpec
from entrycheck.special.tables import Table, read_table

BUGFLAG_WARNING = 1
_BANNER = re.compile(rb"Linux version (\d+)\.(\d+)(?:\.(\d+))?")


class Alternative(NamedTuple):
    """Replacement code that may run instead of `length` bytes at `site`."""

    site: int
    replacement: int
    length: int
    original_length: int


def kernel_version(image: Image) -> tuple[int, ...] | None:
    """The version in `linux_banner` ("Linux version 6.12.117+deb12..."): (6, 12, 117)."""
    addr = image.symbol_address("linux_banner")
    section = image.section_at(addr) if addr is not None else None
    data = image.read(addr, min(64, section.addr + section.size - addr)) if section else None
    m = _BANNER.match(data or b"")
    return tuple(int(g) for g in m.groups() if g is not None) if m else None


class _Ranged:
    """Items sorted by address, looked up by extent."""

    def __init__(self, items: list[tuple[int, object]]):
        items.sort(key=lambda i: i[0])
        self._keys = [k for k, _ in items]
        self._items = [v for _, v in items]

    def within(self, start: int, end: int) -> list:
        lo, hi = bisect.bisect_left(self._keys, start), bisect.bisect_left(self._keys, end)
        return self._items[lo:hi]


class SpecialSections:
    """The descriptor tables of an image, read on first use."""

    def __init__(self, image: Image, knowledge: Knowledge):
        self.image = image
        self.version = kernel_version(image)
        self._specs = {t.name: t for t in knowledge.tables}
        self._tables: dict[str, Table] = {}

    def table(self, name: str, decode: bool = True) -> Table:
        """One table by its knowledge name (entries decoded unless `decode` is False)."""
        have = self._tables.get(name)
        if have is None or (decode and have.count and not have.entries):
            have = read_table(self.image, self._specs[name], self.version, decode)
            self._tables[name] = have
        return have

    def spec(self, name: str) -> TableSpec:
        return self._specs[name]

    def summary(self) -> list[dict]:
        """Every table: entries, layout used, or why it could not be read."""
        return [self.table(name, decode=False).as_json() for name in self._specs]

    def problems(self) -> list[str]:
        """One line per table that exists but fits no layout."""
        return [f"{t['name']}: {t['problem']}" for t in self.summary() if t.get("problem")]

    @cached_property
    def _alternatives(self) -> _Ranged:
        return _Ranged([(e["instr"], Alternative(e["instr"], e["repl"], e["repllen"],
                                                 e["instrlen"]))
                        for e in self.table("alternatives").entries])

    @cached_property
    def _labels(self) -> _Ranged:
        return _Ranged([(e["code"], (e["code"], e["target"], e["key"]))
                        for e in self.table("jump_labels").entries])

    @cached_property
    def _fixups(self) -> _Ranged:
        return _Ranged([(e["insn"], e["fixup"])
                        for e in self.table("exception_fixups").entries])

    @cached_property
    def warn_sites(self) -> frozenset[int]:
        """Addresses of the traps of WARN()s: the handler reports and execution goes on."""
        return frozenset(e["addr"] for e in self.table("bugs").entries
                         if e["flags"] & BUGFLAG_WARNING)

    @cached_property
    def bug_sites(self) -> frozenset[int]:
        """Addresses of the traps of BUG()s (a `__bug_table` entry without BUGFLAG_WARNING)."""
        return frozenset(e["addr"] for e in self.table("bugs").entries
                         if not e["flags"] & BUGFLAG_WARNING)

    def alternatives_in(self, start: int, end: int) -> list[Alternative]:
        return self._alternatives.within(start, end)

    def jump_labels_in(self, start: int, end: int) -> list[tuple[int, int, int, bool]]:
        """(site, target, key, branch) of a function's static-key sites whose target is its
        own code; `branch` is the entry's branch bit (the key field's bit 0)."""
        return [(s, t, k & ~3, bool(k & 1)) for s, t, k in self._labels.within(start, end)
                if start <= t < end]

    def fixups_in(self, start: int, end: int) -> list[int]:
        """Where faulting instructions of a function resume (their exception fixups)."""
        return [t for t in self._fixups.within(start, end) if start <= t < end]
