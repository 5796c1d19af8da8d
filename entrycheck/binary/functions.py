"""Code symbols as functions: identified by address, with extents, names and source files.

Assembly entry code uses NOTYPE symbols, sized (SYM_CODE_START/END) or not (inner labels);
C code uses sized FUNC symbols. An extent runs to the symbol's size, cut at the next code
symbol, so an inner label such as secondary_startup_64_no_verify becomes its own node,
reached from its parent by fall-through. Two static functions may share a name: a
function is its address, and a name may stand for several (the FILE symbol before a
local symbol in `.symtab` says which source file each comes from).
"""

from __future__ import annotations

import bisect
import difflib
import re
from collections.abc import Callable

from entrycheck.binary.image import Image, Symbol
from entrycheck.errors import EntrycheckError
from entrycheck.model import Function

_SUFFIX = re.compile(r"(\.(constprop|isra|part|cold|lto_priv|llvm)(\.\d+)*)+$")
_MARKER = re.compile(r"^_s?text$|^_s|^_e|^__(start|stop|end|begin)_|_(start|end|begin)$")
_QUALIFIED = re.compile(r"^(?P<name>[^@]+)@(?P<where>0x[0-9a-fA-F]+|[\w./+-]+)$")


def normalise_name(name: str) -> str:
    """Strip compiler clone suffixes (.constprop.N, .isra.N, .part.N, .cold) and `__pi_`."""
    name = _SUFFIX.sub("", name)
    return name.removeprefix("__pi_")


class NameIndex:
    """Names to function addresses (a name may stand for several static functions), and the
    source file of each static function whose name is not unique."""

    def __init__(self, by_name: dict[str, list[int]], files: dict[int, str], where: str):
        self._by_name: dict[str, list[int]] | None = by_name
        self._files: dict[int, str] | None = files
        self._load: Callable[[], dict] | None = None
        self.where = where  # the image, for messages
        self._normal: dict[str, list[int]] | None = None

    @classmethod
    def lazy(cls, load: Callable[[], tuple[dict[str, list[int]], dict[int, str]]],
             where: str) -> NameIndex:
        """An index whose (by_name, files) `load()` gives when first used."""
        index = cls({}, {}, where)
        index._by_name = index._files = None
        index._load = load
        return index

    @property
    def by_name(self) -> dict[str, list[int]]:
        if self._by_name is None:
            self._read()
        return self._by_name

    @property
    def files(self) -> dict[int, str]:
        if self._files is None:
            self._read()
        return self._files

    def _read(self) -> None:
        self._by_name, self._files = self._load()

    def matching(self, names: frozenset[str]) -> frozenset[int]:
        """Addresses of the functions whose names, compiler suffixes stripped, are listed
        (knowledge lists name `__mutex_unlock_slowpath`, the image has `.constprop.0`)."""
        if self._normal is None:
            self._normal = {}
            for name, addrs in self.by_name.items():
                self._normal.setdefault(normalise_name(name), []).extend(addrs)
        return frozenset(a for n in names for a in self._normal.get(normalise_name(n), ()))

    def label(self, name: str, address: int) -> str:
        """`name` when unique, else `name@file.c` (or `name@0xaddr`)."""
        if len(self.by_name.get(name, ())) <= 1:
            return name
        where = self.files.get(address)
        return f"{name}@{where}" if where else f"{name}@{address:#x}"

    def candidates(self, name: str) -> list[int]:
        """The addresses a user-given name may mean: exact, `name@file.c`, `name@0xaddr`,
        else the name without compiler suffixes."""
        m = _QUALIFIED.match(name)
        if m:
            base, where = m.group("name"), m.group("where")
            found = self.by_name.get(base) or self._normalised(base)
            if where.startswith("0x"):
                return [a for a in found if a == int(where, 16)]
            return [a for a in found if self.files.get(a, "").endswith(where)]
        return list(self.by_name.get(name, ())) or self._normalised(name)

    def find(self, name: str) -> int:
        """The one address a user-given name means; EntrycheckError when absent (with
        close names) or ambiguous (with the choices)."""
        found = self.candidates(name)
        if len(found) == 1:
            return found[0]
        if found:
            base = _QUALIFIED.match(name).group("name") if _QUALIFIED.match(name) else name
            listed = ", ".join(self.label(base, a) if a in self.files else f"{base}@{a:#x}"
                               for a in found[:8])
            raise EntrycheckError(f"{name!r} names {len(found)} functions: {listed}; "
                                  "give one as NAME@FILE or NAME@ADDRESS")
        raise EntrycheckError(f"{self.where}: no function named {name!r}{self.suggest(name)}")

    def suggest(self, name: str) -> str:
        """` (did you mean a, b?)` for a misspelt name, else ``."""
        close = difflib.get_close_matches(name, [n for n in self.by_name if n != name], n=3)
        return f" (did you mean {', '.join(close)}?)" if close else ""

    def _normalised(self, name: str) -> list[int]:
        wanted = normalise_name(name)
        return sorted({a for n, addrs in self.by_name.items() if normalise_name(n) == wanted
                       for a in addrs})

    def to_data(self) -> dict:
        return {"names": self.by_name, "files": {str(a): f for a, f in self.files.items()}}


class FunctionTable:
    """All code symbols of an image, indexed by address and by name."""

    def __init__(self, image: Image):
        self.image = image
        by_addr: dict[int, list[Symbol]] = {}
        files: dict[int, str] = {}
        sections = image.sections
        current_file = None
        for sym in image.symbols:
            if sym.type == "FILE":
                current_file = sym.name
                continue
            if sym.type not in ("FUNC", "NOTYPE") or not 0 < sym.section < len(sections):
                continue
            sec = sections[sym.section]
            if sec.executable and sec.contains(sym.value):
                by_addr.setdefault(sym.value, []).append(sym)
                if sym.bind == "LOCAL" and current_file and sym.type == "FUNC":
                    files.setdefault(sym.value, current_file)
        self._starts = sorted(by_addr)
        self._functions: dict[int, Function] = {}
        self._by_name: dict[str, list[int]] = {}
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
                self._by_name.setdefault(name, []).append(addr)
        if not self._functions:
            raise EntrycheckError(f"{image.path}: no code symbols in executable sections")
        shared = {a for addrs in self._by_name.values() if len(addrs) > 1 for a in addrs}
        self.index = NameIndex(self._by_name, {a: f for a, f in files.items() if a in shared},
                               str(image.path))

    def __len__(self) -> int:
        return len(self._functions)

    def __iter__(self):
        return iter(self._functions.values())

    def at(self, addr: int) -> Function | None:
        """The function whose extent holds an address."""
        i = bisect.bisect_right(self._starts, addr) - 1
        if i < 0:
            return None
        func = self._functions[self._starts[i]]
        return func if addr < func.end else None

    def add_label(self, addr: int, name: str) -> Function | None:
        """A function for code at `addr` that no symbol covers (an entry a Xen note gives
        where the symbol is lost), up to the next code symbol; None outside code."""
        sec = self.image.section_at(addr)
        if sec is None or not sec.executable or self.at(addr) is not None:
            return None
        i = bisect.bisect_right(self._starts, addr)
        end = sec.addr + sec.size
        if i < len(self._starts):
            end = min(end, self._starts[i])
        func = Function(name, addr, max(end, addr + 1), sec.name, ())
        self._starts.insert(i, addr)
        self._functions[addr] = func
        self._by_name.setdefault(name, []).append(addr)  # shared with self.index
        self.index._normal = None
        return func

    def starting_at(self, addr: int) -> Function | None:
        return self._functions.get(addr)

    def all_named(self, name: str) -> list[Function]:
        """Every function carrying this exact name (static functions may share one)."""
        return [self._functions[a] for a in self._by_name.get(name, ())]

    def named(self, name: str) -> Function | None:
        """The function of this exact name, when only one has it (else the global one)."""
        found = self.all_named(name)
        if len(found) == 1:
            return found[0]
        globals_ = [f for f in found if f.start not in self.index.files]
        return globals_[0] if len(globals_) == 1 else None

    def label(self, func: Function) -> str:
        """`name` when unique, else `name@file.c` (or `name@0xaddr`)."""
        return self.index.label(func.name, func.start)

    def find(self, name: str) -> Function:
        """A function by user-given name (see `NameIndex.find`)."""
        return self._functions[self.index.find(name)]


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
