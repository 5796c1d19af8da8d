"""The kernel image: sections, symbols, relocations and notes of an x86 vmlinux ELF.

Only this module reads ELF structures. pyelftools parses the headers; the fixed-size
symbol and relocation tables are read in bulk with ``struct`` (a real vmlinux has
over 100,000 symbols, and per-symbol iteration through pyelftools costs seconds).
"""

from __future__ import annotations

import bisect
import mmap
import struct
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import NamedTuple

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile

from entrycheck.errors import EntrycheckError
from entrycheck.safeio import check_regular, shown

SHF_WRITE = 0x1
SHF_ALLOC = 0x2
SHF_EXECINSTR = 0x4
SHT_NOBITS = 8
SHT_NOTE = 7
SHT_RELA = 4

STT_NAMES = {0: "NOTYPE", 1: "OBJECT", 2: "FUNC", 3: "SECTION", 4: "FILE"}
STB_NAMES = {0: "LOCAL", 1: "GLOBAL", 2: "WEAK"}

XEN_ELFNOTE_ENTRY = 1
XEN_ELFNOTE_PHYS32_ENTRY = 18
NT_GNU_BUILD_ID = 3

MACHINES = {"EM_X86_64": 64, "EM_386": 32}
MAX_NOBITS = 4 << 30  # a .bss larger than this is not a kernel's


@dataclass(frozen=True)
class Section:
    """One ELF section header."""

    index: int
    name: str
    type: int
    flags: int
    addr: int
    offset: int
    size: int
    link: int
    info: int
    entsize: int

    @property
    def alloc(self) -> bool:
        return bool(self.flags & SHF_ALLOC)

    @property
    def executable(self) -> bool:
        """Holds code: allocated and executable, except a writable `.data` that a linker
        flagged executable (Debian's 7.x vmlinux has `.data` WAX: data objects only)."""
        if self.flags & SHF_WRITE and (self.name == ".data" or self.name.startswith(".data.")):
            return False
        return bool(self.flags & SHF_EXECINSTR) and self.alloc

    def contains(self, addr: int) -> bool:
        return self.addr <= addr < self.addr + self.size


class Symbol(NamedTuple):
    """One `.symtab` entry (a tuple: a real vmlinux has well over 100,000 of them)."""

    name: str
    value: int
    size: int
    type: str
    bind: str
    section: int


@dataclass(frozen=True)
class Relocation:
    """One RELA entry, with its symbol resolved: the slot holds symbol + addend."""

    offset: int
    type: int
    symbol: str
    symbol_value: int
    addend: int

    @property
    def target(self) -> int:
        return (self.symbol_value + self.addend) & 0xFFFFFFFFFFFFFFFF


@dataclass(frozen=True)
class Segment:
    """A PT_LOAD program header: maps virtual to physical (load) addresses."""

    vaddr: int
    paddr: int
    memsz: int


class Image:
    """A memory-mapped x86 kernel ELF. Parses lazily; raises EntrycheckError on bad input."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        where = shown(self.path)
        st = check_regular(self.path, "a vmlinux ELF image", "open")
        if st.st_size == 0:
            raise EntrycheckError(f"{where}: empty file, not an ELF image")
        try:
            self._file = self.path.open("rb")
            self._map = mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError) as exc:
            raise EntrycheckError(f"{where}: cannot open: "
                                  f"{getattr(exc, 'strerror', None) or exc}") from None
        self._check_ident()
        try:
            self._elf = ELFFile(self._file)
            machine = self._elf.header["e_machine"]
            self.sections = self._read_sections()
            self.segments = self._read_segments()
        except EntrycheckError:
            raise
        except (ELFError, struct.error, ValueError, OSError, OverflowError, IndexError,
                KeyError, TypeError, AssertionError) as exc:
            raise EntrycheckError(f"{where}: malformed or truncated ELF: "
                                  f"{shown(exc)}") from None
        if machine not in MACHINES:
            raise EntrycheckError(f"{where}: not an x86 kernel (ELF machine {machine})")
        self.bits = MACHINES[machine]
        if self.bits != self._elf.elfclass:
            raise EntrycheckError(f"{where}: an ELF{self._elf.elfclass} file with machine "
                                  f"{machine}: not an x86 kernel of either width")
        self._check_extents()
        self._by_name = {s.name: s for s in self.sections}
        alloc = sorted((s for s in self.sections if s.alloc and s.size), key=lambda s: s.addr)
        self._alloc = alloc
        self._alloc_starts = [s.addr for s in alloc]
        if ".symtab" not in self._by_name:
            raise EntrycheckError(
                f"{where}: no .symtab: stripped kernel, use an unstripped vmlinux"
            )
        self._check_symtab()

    def _check_ident(self) -> None:
        """The ELF identification: magic, class and byte order an x86 kernel has."""
        where, ident = shown(self.path), self._map[:16]
        if ident[:4] != b"\x7fELF":
            raise EntrycheckError(f"{where}: not an ELF file")
        if len(ident) < 16 or ident[4] not in (1, 2):
            raise EntrycheckError(f"{where}: malformed ELF: class {ident[4:5].hex() or 'none'}"
                                  ", neither ELF32 nor ELF64")
        if ident[5] != 1:
            order = "big-endian" if ident[5] == 2 else f"byte order {ident[5]}"
            raise EntrycheckError(f"{where}: a {order} ELF file: not an x86 kernel "
                                  "(x86 is little-endian)")

    # -- headers -----------------------------------------------------------------

    def _read_sections(self) -> list[Section]:
        hdr, size = self._elf.header, len(self._map)
        fmt = "<IIQQQQIIQQ" if self._elf.elfclass == 64 else "<IIIIIIIIII"
        shoff, shnum, entsize = hdr["e_shoff"], hdr["e_shnum"], hdr["e_shentsize"]
        if not shnum:
            raise ValueError("no section headers")
        if entsize != struct.calcsize(fmt):
            raise ValueError(f"section header size e_shentsize={entsize}, not "
                             f"{struct.calcsize(fmt)}")
        if shoff + shnum * entsize > size:
            raise ValueError(f"section headers at e_shoff={shoff:#x} ({shnum} of them) run "
                             f"past the end of the file ({size:#x} bytes)")
        raw = [struct.unpack_from(fmt, self._map, shoff + i * entsize) for i in range(shnum)]
        if not 0 < hdr["e_shstrndx"] < shnum:
            raise ValueError(f"e_shstrndx={hdr['e_shstrndx']} is not a section "
                             f"(there are {shnum})")
        strtab = raw[hdr["e_shstrndx"]]
        names = self._map[strtab[4] : strtab[4] + strtab[5]]
        return [
            Section(i, _cstr(names, name), stype, flags, addr, offset, size, link, info, entsize)
            for i, (name, stype, flags, addr, offset, size, link, info, _, entsize)
            in enumerate(raw)
        ]

    def _read_segments(self) -> list[Segment]:
        return [
            Segment(p["p_vaddr"], p["p_paddr"], p["p_memsz"])
            for p in self._elf.iter_segments()
            if p["p_type"] == "PT_LOAD"
        ]

    def _check_extents(self) -> None:
        """Every section inside the file (NOBITS: inside the address space, and no
        larger than the image could load)."""
        size, where = len(self._map), shown(self.path)
        for s in self.sections:
            if s.type != SHT_NOBITS and s.size and s.offset + s.size > size:
                raise EntrycheckError(
                    f"{where}: truncated: section {shown(s.name, 40)} ends at "
                    f"{s.offset + s.size:#x}, file is {size:#x} bytes"
                )
            if s.alloc and s.addr + s.size > 1 << self.bits:
                raise EntrycheckError(f"{where}: malformed ELF: section {shown(s.name, 40)} "
                                      f"at {s.addr:#x} of {s.size:#x} bytes runs past the "
                                      f"{self.bits}-bit address space")
            if s.type == SHT_NOBITS and s.size > MAX_NOBITS:
                raise EntrycheckError(f"{where}: malformed ELF: NOBITS section "
                                      f"{shown(s.name, 40)} of {s.size:#x} bytes (more than "
                                      f"{MAX_NOBITS >> 30} GiB)")

    def _check_symtab(self) -> None:
        """.symtab links a string table and holds whole entries."""
        symtab, where = self._by_name[".symtab"], shown(self.path)
        if symtab.type == SHT_NOBITS:
            raise EntrycheckError(f"{where}: malformed ELF: .symtab is NOBITS (no symbols)")
        if not 0 < symtab.link < len(self.sections) or \
                self.sections[symtab.link].type == SHT_NOBITS:
            raise EntrycheckError(f"{where}: malformed ELF: .symtab's sh_link={symtab.link} "
                                  "is not a string table")

    def section(self, name: str) -> Section | None:
        return self._by_name.get(name)

    def section_at(self, addr: int) -> Section | None:
        """The allocated section that holds a virtual address."""
        i = bisect.bisect_right(self._alloc_starts, addr) - 1
        while i >= 0:
            s = self._alloc[i]
            if s.contains(addr):
                return s
            if s.addr + s.size <= addr and i < len(self._alloc) - 1:
                return None
            i -= 1
        return None

    def is_code(self, addr: int) -> bool:
        s = self.section_at(addr)
        return s is not None and s.executable

    # -- contents ----------------------------------------------------------------

    def section_bytes(self, section: Section) -> bytes | memoryview:
        if section.type == SHT_NOBITS:
            return bytes(section.size)
        return memoryview(self._map)[section.offset : section.offset + section.size]

    def read(self, addr: int, size: int) -> bytes | None:
        """Bytes at a virtual address, or None when it is not inside one allocated section."""
        s = self.section_at(addr)
        if s is None or addr + size > s.addr + s.size:
            return None
        if s.type == SHT_NOBITS:
            return bytes(size)
        start = s.offset + addr - s.addr
        return self._map[start : start + size]

    def read_pointer(self, addr: int) -> int | None:
        data = self.read(addr, self.bits // 8)
        if data is None:
            return None
        return int.from_bytes(data, "little")

    def phys_to_virt(self, paddr: int) -> int | None:
        """The virtual address of a physical (load) address, through the PT_LOAD headers."""
        for seg in self.segments:
            if seg.paddr <= paddr < seg.paddr + seg.memsz and seg.paddr != seg.vaddr:
                return paddr - seg.paddr + seg.vaddr
        return None

    # -- symbols -----------------------------------------------------------------

    @cached_property
    def symbols(self) -> list[Symbol]:
        """Every named symbol of `.symtab`, read in one pass over the raw table."""
        symtab = self._by_name[".symtab"]
        strtab = self.sections[symtab.link]
        names = self._map[strtab.offset : strtab.offset + strtab.size]
        raw = self._map[symtab.offset : symtab.offset + symtab.size]
        if self.bits == 64:
            fmt, fields = "<IBBHQQ", (0, 4, 1, 5, 3)
        else:
            fmt, fields = "<IIIBBH", (0, 1, 3, 2, 5)
        entsize = struct.calcsize(fmt)
        raw = raw[: len(raw) - len(raw) % entsize]
        i_name, i_value, i_info, i_size, i_shndx = fields
        out = []
        for entry in struct.iter_unpack(fmt, raw):
            name_off = entry[i_name]
            if not name_off:
                continue
            info = entry[i_info]
            out.append(
                Symbol(
                    _cstr(names, name_off),
                    entry[i_value],
                    entry[i_size],
                    STT_NAMES.get(info & 0xF, str(info & 0xF)),
                    STB_NAMES.get(info >> 4, str(info >> 4)),
                    entry[i_shndx],
                )
            )
        return out

    @cached_property
    def symbols_by_name(self) -> dict[str, list[Symbol]]:
        table: dict[str, list[Symbol]] = {}
        for sym in self.symbols:
            table.setdefault(sym.name, []).append(sym)
        return table

    @cached_property
    def _data_symbols(self) -> tuple[list[int], list[Symbol]]:
        syms = sorted((s for s in self.symbols if s.type in ("OBJECT", "NOTYPE") and s.section),
                      key=lambda s: (s.value, -s.size))
        return [s.value for s in syms], syms

    def symbol_covering(self, addr: int) -> Symbol | None:
        """The data symbol whose extent holds `addr` (or the nearest unsized label below)."""
        values, syms = self._data_symbols
        i = bisect.bisect_right(values, addr) - 1
        for sym in syms[max(i - 8, 0) : i + 1][::-1]:
            if sym.value <= addr < sym.value + sym.size:
                return sym
        return syms[i] if i >= 0 and syms[i].size == 0 else None

    def symbol_named(self, name: str) -> Symbol | None:
        """A named symbol (the first definition, globals before locals)."""
        syms = [s for s in self.symbols_by_name.get(name, ()) if s.section]
        if not syms:
            return None
        syms.sort(key=lambda s: s.bind == "LOCAL")
        return syms[0]

    def symbol_address(self, name: str) -> int | None:
        """Address of a named symbol (the first definition, globals before locals)."""
        sym = self.symbol_named(name)
        return None if sym is None else sym.value

    # -- relocations ---------------------------------------------------------------

    def relocation_targets(self, section: Section) -> dict[int, int]:
        """What the RELA entries that apply to an allocated section put in each slot
        (symbol + addend), keyed by the virtual address patched."""
        cache = self.__dict__.setdefault("_reloc_cache", {})
        if section.index not in cache:
            cache[section.index] = self._read_relocations(section)
        return cache[section.index]

    def relocation_target(self, addr: int) -> int | None:
        s = self.section_at(addr)
        return None if s is None else self.relocation_targets(s).get(addr)

    def relocation_at(self, addr: int) -> Relocation | None:
        """The whole RELA entry for a slot, its symbol named (a slow look-up, for people)."""
        s = self.section_at(addr)
        if s is None or addr not in self.relocation_targets(s):
            return None
        for rela in self._rela_sections(s):
            data = self._map[rela.offset : rela.offset + rela.size]
            for offset, info, addend in struct.iter_unpack("<QQq", data[: len(data) // 24 * 24]):
                if offset == addr and info >> 32 < len(self._symbol_values):
                    name, value = self._symbol_at(info >> 32)
                    return Relocation(offset, info & 0xFFFFFFFF, name, value, addend)
        return None

    def _rela_sections(self, target: Section) -> list[Section]:
        return [r for r in self.sections if r.type == SHT_RELA and r.info == target.index]

    @cached_property
    def _symbol_values(self) -> list[int]:
        """st_value of every .symtab entry, by index."""
        symtab = self._by_name[".symtab"]
        raw = self._map[symtab.offset : symtab.offset + symtab.size]
        return [e[4] for e in struct.iter_unpack("<IBBHQQ", raw[: len(raw) // 24 * 24])]

    def _symbol_at(self, index: int) -> tuple[str, int]:
        symtab = self._by_name[".symtab"]
        strtab = self.sections[symtab.link]
        names = self._map[strtab.offset : strtab.offset + strtab.size]
        name_off, st_info, _, shndx, value, _ = struct.unpack_from(
            "<IBBHQQ", self._map, symtab.offset + index * 24)
        name = _cstr(names, name_off) if name_off else ""
        if not name and (st_info & 0xF) == 3 and shndx < len(self.sections):
            name = self.sections[shndx].name
        return name, value

    def _read_relocations(self, target: Section) -> dict[int, int]:
        out: dict[int, int] = {}
        if self.bits != 64:
            return out
        values = self._symbol_values
        count = len(values)
        for rela in self._rela_sections(target):
            data = self._map[rela.offset : rela.offset + rela.size]
            for offset, info, addend in struct.iter_unpack("<QQq", data[: len(data) // 24 * 24]):
                index = info >> 32
                if index < count:
                    out[offset] = (values[index] + addend) & 0xFFFFFFFFFFFFFFFF
        return out

    # -- notes -------------------------------------------------------------------

    @cached_property
    def notes(self) -> list[tuple[str, int, bytes]]:
        """(owner, type, descriptor) of every note in SHT_NOTE sections."""
        out = []
        for s in self.sections:
            if s.type != SHT_NOTE or not s.size:
                continue
            data = bytes(self.section_bytes(s))
            pos = 0
            while pos + 12 <= len(data):
                namesz, descsz, ntype = struct.unpack_from("<III", data, pos)
                pos += 12
                name = data[pos : pos + namesz].rstrip(b"\0").decode("ascii", "replace")
                pos += _align4(namesz)
                out.append((name, ntype, data[pos : pos + descsz]))
                pos += _align4(descsz)
        return out

    @cached_property
    def build_id(self) -> str | None:
        for owner, ntype, desc in self.notes:
            if owner == "GNU" and ntype == NT_GNU_BUILD_ID:
                return desc.hex()
        return None

    def xen_note(self, ntype: int) -> int | None:
        """The integer value of a Xen ELF note (XEN_ELFNOTE_ENTRY, XEN_ELFNOTE_PHYS32_ENTRY)."""
        for owner, t, desc in self.notes:
            if owner == "Xen" and t == ntype and len(desc) in (4, 8):
                return int.from_bytes(desc, "little")
        return None

    @property
    def has_dwarf(self) -> bool:
        return ".debug_info" in self._by_name



def _cstr(table: bytes | mmap.mmap, offset: int) -> str:
    end = table.find(b"\0", offset)
    return bytes(table[offset : end if end >= 0 else len(table)]).decode("utf-8", "replace")


def _align4(n: int) -> int:
    return (n + 3) & ~3
