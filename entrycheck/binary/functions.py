"""Code symbols as functions: one canonical name per address, extents, lookups.

Assembly entry code uses NOTYPE symbols, sized (SYM_CODE_START/END) or not (inner labels);
C code uses sized FUNC symbols. An extent runs to the symbol's size, cut at the next code
symbol, so an inner label such as secondary_startup_64_no_verify becomes its own node,
reached from its parent by fall-through.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass

from entrycheck.binary.image import Image, Symbol
from entrycheck.errors import EntrycheckError

_SUFFIX = re.compile(r"(\.(constprop|isra|part|cold|lto_priv|llvm)(\.\d+)*)+$")
_MARKER = re.compile(r"^_s?text$|^_s|^_e|^__(start|stop|end|begin)_|_(start|end|begin)$")


def normalise_name(name: str) -> str:
    """Strip compiler clone suffixes (.constprop.N, .isra.N, .part.N, .cold) and `__pi_`."""
    name = _SUFFIX.sub("", name)
    return name.removeprefix("__pi_")


@dataclass(frozen=True)
class Function:
    """A code symbol with the extent this project decodes for it."""

    name: str
    start: int
    end: int
    section: str
    aliases: tuple[str, ...] = ()

    @property
    def size(self) -> int:
        return self.end - self.start


class FunctionTable:
    """All code symbols of an image, indexed by address and by name."""

    def __init__(self, image: Image):
        self.image = image
        by_addr: dict[int, list[Symbol]] = {}
        sections = image.sections
        for sym in image.symbols:
            if sym.type not in ("FUNC", "NOTYPE") or not 0 < sym.section < len(sections):
                continue
            sec = sections[sym.section]
            if sec.executable and sec.contains(sym.value):
                by_addr.setdefault(sym.value, []).append(sym)
        self._starts = sorted(by_addr)
        self._functions: dict[int, Function] = {}
        self._by_name: dict[str, int] = {}
        for i, addr in enumerate(self._starts):
            syms = by_addr[addr]
            if len(syms) > 1:
                syms = sorted(syms, key=_rank)
            best = syms[0]
            sec = sections[best.section]
            limit = sec.addr + sec.size
            if i + 1 < len(self._starts):
                limit = min(limit, self._starts[i + 1])
            end = min(addr + best.size, limit) if best.size else limit
            names = tuple(dict.fromkeys(s.name for s in syms))
            self._functions[addr] = Function(best.name, addr, max(end, addr + 1), sec.name,
                                             names[1:])
            for name in names:
                self._by_name.setdefault(name, addr)
        if not self._functions:
            raise EntrycheckError(f"{image.path}: no code symbols in executable sections")

    def __len__(self) -> int:
        return len(self._functions)

    def __iter__(self):
        return iter(self._functions.values())

    def names(self) -> frozenset[str]:
        """Every code symbol name, aliases included."""
        return frozenset(self._by_name)

    def at(self, addr: int) -> Function | None:
        """The function whose extent holds an address."""
        i = bisect.bisect_right(self._starts, addr) - 1
        if i < 0:
            return None
        func = self._functions[self._starts[i]]
        return func if addr < func.end else None

    def starting_at(self, addr: int) -> Function | None:
        return self._functions.get(addr)

    def named(self, name: str) -> Function | None:
        addr = self._by_name.get(name)
        return None if addr is None else self._functions[addr]

    def find(self, name: str) -> Function:
        """A function by exact name, else by normalised name; EntrycheckError when absent."""
        func = self.named(name)
        if func is not None:
            return func
        wanted = normalise_name(name)
        for candidate, addr in self._by_name.items():
            if normalise_name(candidate) == wanted:
                return self._functions[addr]
        raise EntrycheckError(f"{self.image.path}: no function named {name!r}")


def _rank(sym: Symbol) -> tuple:
    """Prefer FUNC over NOTYPE, sized over labels, global over local, and real names over
    linker markers such as _text, _stext, __entry_text_start."""
    return (
        sym.type != "FUNC",
        sym.size == 0,
        bool(_MARKER.search(sym.name)),
        {"GLOBAL": 0, "WEAK": 1}.get(sym.bind, 2),
        sym.name,
    )
