"""A byte-level DWARF 2-5 reader: unit headers, abbreviations, DIEs, ranges and file tables.

Only what `dwarf.DwarfIndex` needs, read straight from the section bytes (no relocations:
a linked vmlinux holds final values) so that one compile unit of a distro vmlinux indexes
in milliseconds: pyelftools builds an object per DIE and attribute, which costs about a
minute for the few hundred units an entry's boot path touches. Every read is bounded by
the section it reads; malformed data raises `DwarfFormatError` (or IndexError, ValueError,
struct.error on truncation), which the index turns into one line.
"""

from __future__ import annotations

import bisect
import struct
from dataclasses import dataclass, field
from functools import cached_property

SHT_PROGBITS = 1
SECTIONS = (".debug_info", ".debug_abbrev", ".debug_aranges", ".debug_str", ".debug_line",
            ".debug_line_str", ".debug_ranges", ".debug_rnglists", ".debug_addr",
            ".debug_str_offsets")

# tags and attributes read; every other one is skipped by size
TAG_COMPILE_UNIT, TAG_PARTIAL_UNIT, TAG_SUBPROGRAM, TAG_INLINED = 0x11, 0x3C, 0x2E, 0x1D
AT_SIBLING, AT_NAME, AT_STMT_LIST, AT_LOW_PC, AT_HIGH_PC, AT_COMP_DIR = 1, 3, 0x10, 0x11, 0x12, 0x1B
AT_ABSTRACT_ORIGIN, AT_DECL_FILE, AT_DECL_LINE, AT_SPECIFICATION = 0x31, 0x3A, 0x3B, 0x47
AT_RANGES, AT_CALL_FILE, AT_CALL_LINE = 0x55, 0x58, 0x59
AT_STR_OFFSETS_BASE, AT_ADDR_BASE, AT_RNGLISTS_BASE = 0x72, 0x73, 0x74
_READ = frozenset({AT_SIBLING, AT_NAME, AT_STMT_LIST, AT_LOW_PC, AT_HIGH_PC, AT_COMP_DIR,
                   AT_ABSTRACT_ORIGIN, AT_DECL_FILE, AT_DECL_LINE, AT_SPECIFICATION, AT_RANGES,
                   AT_CALL_FILE, AT_CALL_LINE, AT_STR_OFFSETS_BASE, AT_ADDR_BASE,
                   AT_RNGLISTS_BASE})
# tags whose subtrees hold no inlined subroutine: call sites (their parameters) and types
_NO_CODE_BELOW = frozenset({0x48, 0x4109, 0x13, 0x17, 0x04, 0x15, 0x01, 0x16, 0x26, 0x35})
MAX_CHAIN = 8          # abstract_origin / specification hops
MAX_RANGES = 1 << 16   # entries of one range list

_U16, _U32, _U64 = struct.Struct("<H"), struct.Struct("<I"), struct.Struct("<Q")

# Form -> how to step over it: a byte count, or "o" (offset size), "a" (address size),
# "u" (LEB128), "s" (NUL-terminated), "b1"/"b2"/"b4"/"bu" (block with a length), "i"
# (indirect). Values of the forms in _VALUE are decoded when the attribute is read.
_FORMS: dict[int, int | str] = {
    0x01: "a", 0x03: "b2", 0x04: "b4", 0x05: 2, 0x06: 4, 0x07: 8, 0x08: "s", 0x09: "bu",
    0x0A: "b1", 0x0B: 1, 0x0C: 1, 0x0D: "u", 0x0E: "o", 0x0F: "u", 0x10: "o", 0x11: 1,
    0x12: 2, 0x13: 4, 0x14: 8, 0x15: "u", 0x16: "i", 0x17: "o", 0x18: "bu", 0x19: 0,
    0x1A: "u", 0x1B: "u", 0x1C: 4, 0x1D: "o", 0x1E: 16, 0x1F: "o", 0x20: 8, 0x21: 0,
    0x22: "u", 0x23: "u", 0x24: 8, 0x25: 1, 0x26: 2, 0x27: 3, 0x28: 4, 0x29: 1, 0x2A: 2,
    0x2B: 3, 0x2C: 4, 0x1F01: "u", 0x1F02: "u", 0x1F20: "o", 0x1F21: "o",
}  # fmt: skip
_FORM_ADDR, _FORM_SDATA, _FORM_STRING, _FORM_STRP, _FORM_REF_ADDR = 0x01, 0x0D, 0x08, 0x0E, 0x10
_FORM_IMPLICIT, _FORM_LINE_STRP, _FORM_SEC_OFFSET = 0x21, 0x1F, 0x17
_REF_FORMS = frozenset({0x11, 0x12, 0x13, 0x14, 0x15})  # unit-relative
_STRX_FORMS = frozenset({0x1A, 0x25, 0x26, 0x27, 0x28, 0x1F02})
_ADDRX_FORMS = frozenset({0x1B, 0x29, 0x2A, 0x2B, 0x2C, 0x1F01})
_RNGLISTX = 0x23


class DwarfFormatError(Exception):
    """DWARF this reader cannot make sense of (the message says what and where)."""


def uleb(data: bytes, pos: int) -> tuple[int, int]:
    """(value, next position) of the unsigned LEB128 at pos."""
    byte = data[pos]
    if byte < 0x80:
        return byte, pos + 1
    value, shift = byte & 0x7F, 7
    while True:
        pos += 1
        byte = data[pos]
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos + 1
        shift += 7
        if shift > 70:
            raise DwarfFormatError(f"LEB128 number too long at {pos:#x}")


def sleb(data: bytes, pos: int) -> tuple[int, int]:
    """(value, next position) of the signed LEB128 at pos."""
    value, end = uleb(data, pos)
    bits = 7 * (end - pos)
    return (value - (1 << bits) if value & (1 << (bits - 1)) else value), end


def find_nul(data: bytes | memoryview, pos: int, end: int) -> int:
    """Position of the first NUL byte in data[pos:end], or -1 (memoryviews have no find)."""
    if isinstance(data, bytes):
        return data.find(b"\0", pos, end)
    while pos < end:
        step = min(end, pos + 256)
        found = bytes(data[pos:step]).find(b"\0")
        if found >= 0:
            return pos + found
        pos = step
    return -1


def cstring(data: bytes | memoryview, pos: int) -> str:
    end = find_nul(data, pos, len(data)) if pos >= 0 else -1
    if end < 0:
        raise DwarfFormatError(f"string at {pos:#x} runs past its section")
    return bytes(data[pos:end]).decode("utf-8", "replace")


class Abbrev:
    """One abbreviation: tag, children flag, attribute specs, and plans to read them
    compiled on first use: `full` keeps the attributes in _READ, `sibling` only
    DW_AT_sibling, `skip` none (None when a form is DW_FORM_indirect: then the specs are
    interpreted one by one); `fixed` is the size when every form has a fixed one."""

    def __init__(self, tag: int, children: bool, specs: tuple[tuple[int, int, int], ...],
                 offsz: int, asize: int):
        self.tag, self.children, self.specs = tag, children, specs
        self._sizes = (offsz, asize)

    @cached_property
    def full(self) -> tuple | None:
        return _plan(self.specs, *self._sizes, _READ)

    @cached_property
    def sibling(self) -> tuple | None:
        return _plan(self.specs, *self._sizes, frozenset({AT_SIBLING}))

    @cached_property
    def skip(self) -> tuple | None:
        return _plan(self.specs, *self._sizes, frozenset())

    @cached_property
    def fixed(self) -> int | None:
        plan = self.skip
        if plan is None or any(op != _OP_SKIP for op, *_ in plan):
            return None
        return sum(size for _, size, _, _ in plan)


# plan steps: (operation, size, attribute kept or 0, form)
_OP_SKIP, _OP_INT, _OP_ULEB, _OP_SLEB, _OP_STR, _OP_BLOCK, _OP_CONST = range(7)
_BLOCK_WIDTH = {"bu": 0, "b1": 1, "b2": 2, "b4": 4}


def _plan(specs: tuple[tuple[int, int, int], ...], offsz: int, asize: int,
          keep: frozenset[int]) -> tuple | None:
    """Steps that read the attributes in `keep` and step over the others (consecutive
    fixed-size ones merged into one step)."""
    ops: list[tuple[int, int, int, int]] = []
    for attr, form, implicit in specs:
        step = _FORMS[form]
        if step == "i":
            return None
        kept = attr if attr in keep else 0
        size = offsz if step == "o" else asize if step == "a" else step
        if form == _FORM_IMPLICIT:
            if kept:
                ops.append((_OP_CONST, implicit, kept, form))
        elif isinstance(size, int):
            if kept:
                ops.append((_OP_INT, size, kept, form))
            elif ops and ops[-1][0] == _OP_SKIP:
                ops[-1] = (_OP_SKIP, ops[-1][1] + size, 0, 0)
            else:
                ops.append((_OP_SKIP, size, 0, 0))
        elif size == "u":
            ops.append((_OP_SLEB if form == _FORM_SDATA else _OP_ULEB, 0, kept, form))
        elif size == "s":
            ops.append((_OP_STR, 0, kept, form))
        else:
            ops.append((_OP_BLOCK, _BLOCK_WIDTH[size], 0, form))
    return tuple(ops)


@dataclass
class Unit:
    """A compile unit: header fields and the base attributes of its top DIE."""

    offset: int
    end: int
    version: int
    offsz: int
    asize: int
    die_start: int
    abbrevs: dict[int, Abbrev]
    top: dict[int, tuple[int, int]] = field(default_factory=dict)  # attr -> (form, value)

    def base(self, attr: int, default: int = 0) -> int:
        return self.top[attr][1] if attr in self.top else default


class Reader:
    """DWARF sections of one ELF file, given as {name: bytes}; .debug_info may be a
    memoryview (of the mapped file: the largest section, read only where asked)."""

    def __init__(self, sections: dict[str, bytes | memoryview]):
        self.sec = {name: sections.get(name, b"") for name in SECTIONS}
        self.info = self.sec[".debug_info"]
        self._abbrev_tables: dict[tuple[int, int, int], dict[int, Abbrev]] = {}
        self._unit_starts: list[int] | None = None
        self._unit_start_set: set[int] | None = None
        self._units: dict[int, Unit] = {}

    # -- units -----------------------------------------------------------------------

    def unit_offsets(self) -> list[int]:
        """Offsets of every unit header in .debug_info (lengths only: fast)."""
        if self._unit_starts is None:
            starts, off, info = [], 0, self.info
            while off + 4 <= len(info):
                length, header = _U32.unpack_from(info, off)[0], 4
                if length == 0xFFFFFFFF:
                    length, header = _U64.unpack_from(info, off + 4)[0], 12
                elif length >= 0xFFFFFFF0:
                    raise DwarfFormatError(f"unit at {off:#x}: reserved length {length:#x}")
                if length < 7 or off + header + length > len(info):
                    raise DwarfFormatError(f"unit at {off:#x}: length {length:#x} does not "
                                           f"fit .debug_info ({len(info):#x} bytes)")
                starts.append(off)
                off += header + length
            self._unit_starts = starts
        return self._unit_starts

    def _unit_set(self) -> set[int]:
        if self._unit_start_set is None:
            self._unit_start_set = set(self.unit_offsets())
        return self._unit_start_set

    def unit_of(self, offset: int) -> Unit:
        """The unit whose DIEs hold a .debug_info offset."""
        starts = self.unit_offsets()
        i = bisect.bisect_right(starts, offset) - 1
        if i < 0:
            raise DwarfFormatError(f"DIE offset {offset:#x} is before the first unit")
        unit = self.unit(starts[i])
        if not unit.die_start <= offset < unit.end:
            raise DwarfFormatError(f"DIE offset {offset:#x} is not inside a unit's DIEs")
        return unit

    def unit(self, offset: int) -> Unit:
        """The unit whose header is at offset, with its top DIE's attributes."""
        if offset in self._units:
            return self._units[offset]
        info = self.info
        length, offsz, pos = _U32.unpack_from(info, offset)[0], 4, offset + 4
        if length == 0xFFFFFFFF:
            length, offsz, pos = _U64.unpack_from(info, offset + 4)[0], 8, offset + 12
        end = pos + length
        if end > len(info) or length < 7:
            raise DwarfFormatError(f"unit at {offset:#x}: bad length {length:#x}")
        version = _U16.unpack_from(info, pos)[0]
        if not 2 <= version <= 5:
            raise DwarfFormatError(f"unit at {offset:#x}: DWARF version {version}")
        pos += 2
        unit_type = 1
        if version >= 5:
            unit_type, asize = info[pos], info[pos + 1]
            pos += 2
        abbrev_off = int.from_bytes(info[pos : pos + offsz], "little")
        pos += offsz
        if version < 5:
            asize, pos = info[pos], pos + 1
        if unit_type in (2, 6):  # type units: signature, type offset
            pos += 8 + offsz
        elif unit_type in (4, 5):  # skeleton / split: dwo id
            pos += 8
        if asize not in (4, 8):
            raise DwarfFormatError(f"unit at {offset:#x}: address size {asize}")
        unit = Unit(offset, end, version, offsz, asize, pos,
                    self._abbrevs(abbrev_off, offsz, asize))
        if pos < end:
            code, p = uleb(info, pos)
            if code:
                unit.top = self._attributes(unit, self.abbrev(unit, code, pos), p)[0]
        self._units[offset] = unit
        return unit

    def _abbrevs(self, offset: int, offsz: int, asize: int) -> dict[int, Abbrev]:
        key = (offset, offsz, asize)
        if key in self._abbrev_tables:
            return self._abbrev_tables[key]
        data, table, pos = self.sec[".debug_abbrev"], {}, offset
        if offset >= len(data):
            raise DwarfFormatError(f"abbreviation table offset {offset:#x} is past "
                                   f".debug_abbrev ({len(data):#x} bytes)")
        while True:
            code, pos = uleb(data, pos)
            if code == 0:
                break
            tag, pos = uleb(data, pos)
            children, pos = data[pos], pos + 1
            specs = []
            while True:
                attr, pos = uleb(data, pos)
                form, pos = uleb(data, pos)
                implicit = 0
                if form == _FORM_IMPLICIT:
                    implicit, pos = sleb(data, pos)
                if attr == 0 and form == 0:
                    break
                if form not in _FORMS:
                    raise DwarfFormatError(f"unknown DWARF form {form:#x} in abbreviation "
                                           f"{code} at {offset:#x}")
                specs.append((attr, form, implicit))
            table[code] = Abbrev(tag, bool(children), tuple(specs), offsz, asize)
        self._abbrev_tables[key] = table
        return table

    @staticmethod
    def abbrev(unit: Unit, code: int, pos: int) -> Abbrev:
        abbrev = unit.abbrevs.get(code)
        if abbrev is None:
            raise DwarfFormatError(f"DIE at {pos:#x}: abbreviation {code} is not in its "
                                   "unit's table")
        return abbrev

    # -- DIEs ------------------------------------------------------------------------

    def _attributes(self, unit: Unit, abbrev: Abbrev, pos: int,
                    ) -> tuple[dict[int, tuple[int, int]], int]:
        """({attribute: (form, raw value)} of the attributes in _READ, position after)."""
        info, out = self.info, {}
        for attr, form, implicit in abbrev.specs:
            if form == 0x16:  # indirect: the form comes first
                form, pos = uleb(info, pos)
            step = _FORMS.get(form)
            if step is None:
                raise DwarfFormatError(f"unknown DWARF form {form:#x} at {pos:#x}")
            start = pos
            if isinstance(step, int):
                pos += step
            elif step == "u":
                value, pos = (sleb if form == _FORM_SDATA else uleb)(info, pos)
                if attr in _READ:
                    out[attr] = (form, value)
                continue
            elif step == "o":
                pos += unit.offsz
            elif step == "a":
                pos += unit.asize
            elif step == "s":
                end = find_nul(info, pos, unit.end)
                if end < 0:
                    raise DwarfFormatError(f"string at {pos:#x} runs past its unit")
                if attr in _READ:
                    out[attr] = (form, pos)
                pos = end + 1
                continue
            else:  # blocks
                if step == "bu":
                    size, pos = uleb(info, pos)
                else:
                    width = int(step[1])
                    size, pos = int.from_bytes(info[pos : pos + width], "little"), pos + width
                pos += size
                continue
            if attr in _READ:
                value = implicit if form == _FORM_IMPLICIT else (
                    int.from_bytes(info[start:pos], "little"))
                out[attr] = (form, value)
        if pos > unit.end:
            raise DwarfFormatError(f"DIE attributes run past the unit at {unit.offset:#x}")
        return out, pos

    def execute(self, plan: tuple, pos: int, end: int) -> tuple[dict[int, tuple[int, int]], int]:
        """Run a compiled plan on the DIE attributes at pos: (kept attributes, next)."""
        info, out = self.info, {}
        for op, size, attr, form in plan:
            if op == _OP_SKIP:
                pos += size
            elif op == _OP_INT:
                out[attr] = (form, int.from_bytes(info[pos : pos + size], "little"))
                pos += size
            elif op in (_OP_ULEB, _OP_SLEB):
                if attr:
                    value, pos = (uleb if op == _OP_ULEB else sleb)(info, pos)
                    out[attr] = (form, value)
                else:
                    while info[pos] & 0x80:
                        pos += 1
                    pos += 1
            elif op == _OP_STR:
                nul = find_nul(info, pos, end)
                if nul < 0:
                    raise DwarfFormatError(f"string at {pos:#x} runs past its unit")
                if attr:
                    out[attr] = (form, pos)
                pos = nul + 1
            elif op == _OP_BLOCK:
                if size:
                    length, pos = int.from_bytes(info[pos : pos + size], "little"), pos + size
                else:
                    length, pos = uleb(info, pos)
                pos += length
            else:  # _OP_CONST
                out[attr] = (form, size)
        if pos > end:
            raise DwarfFormatError(f"DIE attributes run past their unit at {pos:#x}")
        return out, pos

    def read_die(self, unit: Unit, abbrev: Abbrev, pos: int, plan: tuple | None,
                 ) -> tuple[dict[int, tuple[int, int]], int]:
        """The attributes a plan keeps (all of _READ when the plan is None), next position."""
        if plan is not None:
            return self.execute(plan, pos, unit.end)
        return self._attributes(unit, abbrev, pos)

    def die_at(self, offset: int) -> tuple[Unit, int, dict[int, tuple[int, int]]]:
        """(unit, tag, attributes) of the DIE at a .debug_info offset (for references)."""
        unit = self.unit_of(offset)
        code, p = uleb(self.info, offset)
        if code == 0:
            raise DwarfFormatError(f"reference to a null DIE at {offset:#x}")
        abbrev = self.abbrev(unit, code, offset)
        return unit, abbrev.tag, self._attributes(unit, abbrev, p)[0]

    # -- values ----------------------------------------------------------------------

    def string(self, unit: Unit, form: int, value: int) -> str:
        if form == _FORM_STRING:
            return cstring(self.info, value)
        if form == _FORM_STRP:
            return cstring(self.sec[".debug_str"], value)
        if form == _FORM_LINE_STRP:
            return cstring(self.sec[".debug_line_str"], value)
        if form in _STRX_FORMS:
            base = unit.base(AT_STR_OFFSETS_BASE, 8)
            table = self.sec[".debug_str_offsets"]
            at = base + value * unit.offsz
            return cstring(self.sec[".debug_str"],
                           int.from_bytes(table[at : at + unit.offsz], "little"))
        return "<unknown>"  # a supplementary file's string (dwz): not read

    def address(self, unit: Unit, form: int, value: int) -> int:
        if form in _ADDRX_FORMS:
            at = unit.base(AT_ADDR_BASE, 8) + value * unit.asize
            data = self.sec[".debug_addr"]
            if at + unit.asize > len(data):
                raise DwarfFormatError(f"address index {value} past .debug_addr")
            return int.from_bytes(data[at : at + unit.asize], "little")
        return value

    def reference(self, unit: Unit, form: int, value: int) -> int | None:
        """The absolute .debug_info offset a reference attribute names (None: elsewhere)."""
        if form in _REF_FORMS:
            return unit.offset + value
        if form == _FORM_REF_ADDR:
            return value
        return None  # DW_FORM_ref_sig8, GNU_ref_alt: in another section or file

    def ranges(self, unit: Unit, attrs: dict[int, tuple[int, int]]) -> list[tuple[int, int]]:
        """Non-empty [start, end) code ranges of a DIE, in the order DWARF lists them."""
        if AT_RANGES in attrs:
            form, value = attrs[AT_RANGES]
            base = self.address(unit, *unit.top[AT_LOW_PC]) if AT_LOW_PC in unit.top else 0
            return self._rangelist(unit, form, value, base)
        if AT_LOW_PC not in attrs:
            return []
        low = self.address(unit, *attrs[AT_LOW_PC])
        if AT_HIGH_PC not in attrs:
            return [(low, low + 1)]
        hform, high = attrs[AT_HIGH_PC]
        if hform == _FORM_ADDR or hform in _ADDRX_FORMS:
            high = self.address(unit, hform, high)
        else:
            high = low + high
        return [(low, high)] if high > low else []

    def _rangelist(self, unit: Unit, form: int, value: int, base: int) -> list[tuple[int, int]]:
        if unit.version < 5:
            return self._ranges_v4(unit, value, base)
        data = self.sec[".debug_rnglists"]
        if form == _RNGLISTX:
            table = unit.base(AT_RNGLISTS_BASE, 12 if unit.offsz == 4 else 20)
            at = table + value * unit.offsz
            value = table + int.from_bytes(data[at : at + unit.offsz], "little")
        elif form != _FORM_SEC_OFFSET:
            raise DwarfFormatError(f"DW_AT_ranges of form {form:#x}")
        return self._rnglists_v5(unit, data, value, base)

    def _ranges_v4(self, unit: Unit, pos: int, base: int) -> list[tuple[int, int]]:
        data, size, out = self.sec[".debug_ranges"], unit.asize, []
        top = (1 << (8 * size)) - 1
        for _ in range(MAX_RANGES):
            if pos + 2 * size > len(data):
                raise DwarfFormatError(f"range list at {pos:#x} runs past .debug_ranges")
            begin = int.from_bytes(data[pos : pos + size], "little")
            end = int.from_bytes(data[pos + size : pos + 2 * size], "little")
            pos += 2 * size
            if begin == 0 and end == 0:
                return out
            if begin == top:
                base = end
            elif end > begin:
                out.append((base + begin, base + end))
        raise DwarfFormatError("range list without an end")

    def _rnglists_v5(self, unit: Unit, data: bytes, pos: int,
                     base: int) -> list[tuple[int, int]]:
        out, size = [], unit.asize

        def addr(p: int) -> tuple[int, int]:
            if p + size > len(data):
                raise DwarfFormatError(f"range list at {p:#x} runs past .debug_rnglists")
            return int.from_bytes(data[p : p + size], "little"), p + size

        for _ in range(MAX_RANGES):
            kind, pos = data[pos], pos + 1
            if kind == 0:  # end_of_list
                return out
            if kind == 1:  # base_addressx
                index, pos = uleb(data, pos)
                base = self.address(unit, 0x1B, index)
                continue
            if kind == 5:  # base_address
                base, pos = addr(pos)
                continue
            if kind in (2, 3):  # startx_endx, startx_length
                index, pos = uleb(data, pos)
                other, pos = uleb(data, pos)
                lo = self.address(unit, 0x1B, index)
                hi = self.address(unit, 0x1B, other) if kind == 2 else lo + other
            elif kind == 4:  # offset_pair
                lo, pos = uleb(data, pos)
                hi, pos = uleb(data, pos)
                lo, hi = base + lo, base + hi
            elif kind == 6:  # start_end
                lo, pos = addr(pos)
                hi, pos = addr(pos)
            elif kind == 7:  # start_length
                lo, pos = addr(pos)
                length, pos = uleb(data, pos)
                hi = lo + length
            else:
                raise DwarfFormatError(f"unknown range list entry {kind:#x} at {pos - 1:#x}")
            if hi > lo:
                out.append((lo, hi))
        raise DwarfFormatError("range list without an end")

    # -- the index of one unit -------------------------------------------------------

    def index_unit(self, offset: int) -> dict:
        """The unit's functions with code, as compact JSON-ready data: `functions` rows of
        [ranges, name, decl file, decl line, inlines], the inlines (nested ones too, in DIE
        order) flattened as name, call file, call line, low_pc - the function's first
        address, four values each; names and files are indexes into `strings`."""
        if offset not in self._unit_set():
            raise DwarfFormatError(f"no unit starts at .debug_info offset {offset:#x}")
        walk = _Walk(self, self.unit(offset))
        walk.run()
        return walk.result()

    # -- address tables --------------------------------------------------------------

    def aranges(self) -> list[tuple[int, int, int]]:
        """(start, end, unit offset) rows of .debug_aranges."""
        data, rows, off = self.sec[".debug_aranges"], [], 0
        while off + 4 <= len(data):
            length, offsz, pos = _U32.unpack_from(data, off)[0], 4, off + 4
            if length == 0xFFFFFFFF:
                length, offsz, pos = _U64.unpack_from(data, off + 4)[0], 8, off + 12
            end = pos + length
            if length == 0:
                off = end
                continue
            if end > len(data) or length < 4 + offsz:
                raise DwarfFormatError(f".debug_aranges set at {off:#x}: bad length "
                                       f"{length:#x}")
            info_off = int.from_bytes(data[pos + 2 : pos + 2 + offsz], "little")
            pos += 2 + offsz
            asize, segsize = data[pos], data[pos + 1]
            pos += 2
            if segsize:
                raise DwarfFormatError(f".debug_aranges set at {off:#x}: segmented "
                                       "addresses are not supported")
            if asize not in (4, 8):
                raise DwarfFormatError(f".debug_aranges set at {off:#x}: address size {asize}")
            pos += -(pos - off) % (2 * asize)  # tuples are aligned to twice the address size
            while pos + 2 * asize <= end:
                start = int.from_bytes(data[pos : pos + asize], "little")
                size = int.from_bytes(data[pos + asize : pos + 2 * asize], "little")
                pos += 2 * asize
                if start == 0 and size == 0:
                    break
                if size:
                    rows.append((start, start + size, info_off))
            off = end
        return rows

    def unit_ranges(self) -> list[tuple[int, int, int]]:
        """(start, end, unit offset) of every unit's code, from its top DIE (the fallback
        when an address is not in .debug_aranges)."""
        rows = []
        for off in self.unit_offsets():
            unit = self.unit(off)
            rows += [(lo, hi, off) for lo, hi in self.ranges(unit, unit.top)]
        return rows

    # -- file tables -----------------------------------------------------------------

    def file_table(self, unit: Unit) -> dict[int, str]:
        """File index -> path of the unit's line-program header: directory joined to the
        name, relative paths to DW_AT_comp_dir, "." components dropped (".." kept)."""
        if AT_STMT_LIST not in unit.top:
            return {}
        comp_dir = self.string(unit, *unit.top[AT_COMP_DIR]) if AT_COMP_DIR in unit.top else ""
        data = self.sec[".debug_line"]
        pos = unit.top[AT_STMT_LIST][1]
        length, offsz, pos = _U32.unpack_from(data, pos)[0], 4, pos + 4
        if length == 0xFFFFFFFF:
            length, offsz, pos = _U64.unpack_from(data, pos)[0], 8, pos + 8
        end = pos + length
        if end > len(data):
            raise DwarfFormatError(f"line program at {unit.top[AT_STMT_LIST][1]:#x} runs past "
                                   ".debug_line")
        version = _U16.unpack_from(data, pos)[0]
        if not 2 <= version <= 5:
            raise DwarfFormatError(f"line program version {version}")
        pos += 2 + (2 if version >= 5 else 0)  # address and segment selector sizes
        pos += offsz  # header_length
        pos += 4 + (1 if version >= 4 else 0)  # min_inst, [max_ops], default_is_stmt, base, range
        opcode_base = data[pos]
        pos += opcode_base  # opcode_base byte and the standard opcode lengths
        if version >= 5:
            dirs, pos = self._entries_v5(unit, data, pos, offsz)
            files, pos = self._entries_v5(unit, data, pos, offsz)
            base = dirs[0][0] if dirs else comp_dir
            paths = [base] + [_join(base, d) for d, _ in dirs[1:]]
            names = [(name, index) for name, index in files]
            first = 0
        else:
            listed = []
            while data[pos]:
                end_str = data.index(b"\0", pos, end)
                listed.append(data[pos:end_str].decode("utf-8", "replace"))
                pos = end_str + 1
            pos += 1
            names = []
            while data[pos]:
                end_str = data.index(b"\0", pos, end)
                name = data[pos:end_str].decode("utf-8", "replace")
                pos = end_str + 1
                index, pos = uleb(data, pos)
                pos = uleb(data, uleb(data, pos)[1])[1]  # mtime, length
                names.append((name, index))
            paths = [comp_dir] + [_join(comp_dir, d) for d in listed]
            first = 1
        if pos > end:
            raise DwarfFormatError("line program header runs past its program")
        return {i + first: _join(paths[d] if d < len(paths) else paths[0], name)
                for i, (name, d) in enumerate(names)}

    def _entries_v5(self, unit: Unit, data: bytes, pos: int,
                    offsz: int) -> tuple[list[tuple[str, int]], int]:
        """DWARF 5 directory or file entries: (path, directory index) each."""
        count, pos = data[pos], pos + 1
        formats = []
        for _ in range(count):
            kind, pos = uleb(data, pos)
            form, pos = uleb(data, pos)
            formats.append((kind, form))
        entries, pos = uleb(data, pos)
        out = []
        for _ in range(entries):
            path, directory = "", 0
            for kind, form in formats:
                value, pos = self._line_form(unit, data, pos, form, offsz)
                if kind == 1:  # DW_LNCT_path
                    path = value if isinstance(value, str) else ""
                elif kind == 2 and isinstance(value, int):  # DW_LNCT_directory_index
                    directory = value
            out.append((path, directory))
        return out, pos

    def _line_form(self, unit: Unit, data: bytes, pos: int, form: int,
                   offsz: int) -> tuple[str | int | None, int]:
        if form == _FORM_STRING:
            end = data.index(b"\0", pos)
            return data[pos:end].decode("utf-8", "replace"), end + 1
        if form in (_FORM_LINE_STRP, _FORM_STRP):
            value = int.from_bytes(data[pos : pos + offsz], "little")
            return self.string(unit, form, value), pos + offsz
        if form in _STRX_FORMS and form != 0x1A and form != 0x1F02:
            width = _FORMS[form]
            value = int.from_bytes(data[pos : pos + width], "little")
            return self.string(unit, form, value), pos + width
        if form in (0x1A, 0x0F):  # strx, udata
            value, pos = uleb(data, pos)
            return (self.string(unit, form, value) if form == 0x1A else value), pos
        if form in (0x0B, 0x05, 0x06, 0x07, 0x1E):
            width = _FORMS[form]
            return int.from_bytes(data[pos : pos + width], "little"), pos + width
        if form == 0x09:  # block (MD5 as a block)
            size, pos = uleb(data, pos)
            return None, pos + size
        raise DwarfFormatError(f"line header form {form:#x}")


class _Walk:
    """One pass over a unit's DIEs: top-level functions with code and the inlined
    subroutines below each; subtrees of other top-level DIEs are jumped over (DW_AT_sibling)."""

    def __init__(self, reader: Reader, unit: Unit):
        self.reader, self.unit = reader, unit
        self.records: dict[int, dict[int, tuple[int, int]]] = {}  # subprogram/inline DIEs
        self.functions: list[tuple[list[tuple[int, int]], int, list[int]]] = []
        self.strings: dict[str, int] = {}
        self._files: dict[int, dict[int, str]] = {}

    def run(self) -> None:
        reader, unit, info = self.reader, self.unit, self.reader.info
        pos, end = unit.die_start, unit.end
        code, pos = uleb(info, pos)
        top = reader.abbrev(unit, code, pos) if code else None
        if top is None or not top.children:
            return
        pos = reader.read_die(unit, top, pos, top.skip)[1]
        depth, current = 1, None
        functions, records = self.functions, self.records
        while depth > 0 and pos < end:
            here = pos
            code = info[pos]
            if code < 0x80:
                pos += 1
            else:
                code, pos = uleb(info, pos)
            if code == 0:
                depth -= 1
                continue
            abbrev = reader.abbrev(unit, code, here)
            tag = abbrev.tag
            if tag in (TAG_SUBPROGRAM, TAG_INLINED):
                attrs, pos = reader.read_die(unit, abbrev, pos, abbrev.full)
                records[here] = attrs
                if depth == 1:
                    current = None
                    ranges = reader.ranges(unit, attrs) if tag == TAG_SUBPROGRAM else []
                    if ranges:
                        current = []
                        functions.append((ranges, here, current))
                elif tag == TAG_INLINED and current is not None:
                    current.append(here)
                if not abbrev.children:
                    continue
                if current is not None:
                    depth += 1
                    continue
            elif not abbrev.children:
                if abbrev.fixed is not None:
                    pos += abbrev.fixed
                else:
                    pos = reader.read_die(unit, abbrev, pos, abbrev.skip)[1]
                if depth == 1:
                    current = None
                continue
            else:
                if depth == 1:
                    current = None
                if depth > 1 and tag not in _NO_CODE_BELOW:
                    pos = reader.read_die(unit, abbrev, pos, abbrev.skip)[1]
                    depth += 1
                    continue
                attrs, pos = reader.read_die(unit, abbrev, pos, abbrev.sibling)
            # a subtree without code of interest: jump over it when DW_AT_sibling says where
            sibling = attrs.get(AT_SIBLING)
            target = None if sibling is None else reader.reference(unit, *sibling)
            if target is not None and pos <= target <= end:
                pos = target
            else:
                depth += 1

    def result(self) -> dict:
        rows = []
        for ranges, die, inlines in self.functions:
            attrs = self.records[die]
            file, line = self._declaration(attrs)
            flat: list[int | None] = []
            for i in inlines:
                name, call_file, call_line, low = self._inline(self.records[i])
                flat += [name, call_file, call_line, None if low is None else low - ranges[0][0]]
            rows.append([[list(r) for r in ranges], self._name(attrs), file, line, flat])
        top = self.unit.top
        comp_dir = self.reader.string(self.unit, *top[AT_COMP_DIR]) if AT_COMP_DIR in top else None
        return {"strings": list(self.strings), "functions": rows, "comp_dir": comp_dir}

    def _string(self, text: str | None) -> int | None:
        if text is None:
            return None
        return self.strings.setdefault(text, len(self.strings))

    def _follow(self, attrs: dict[int, tuple[int, int]], wanted: int,
                ) -> tuple[Unit, tuple[int, int]] | None:
        """(unit, (form, value)) of `wanted` on this DIE or the ones its abstract_origin /
        specification chain names; None if none has it."""
        unit = self.unit
        for _ in range(MAX_CHAIN):
            if wanted in attrs:
                return unit, attrs[wanted]
            ref = attrs.get(AT_ABSTRACT_ORIGIN) or attrs.get(AT_SPECIFICATION)
            target = None if ref is None else self.reader.reference(unit, *ref)
            if target is None:
                return None
            if unit is self.unit and target in self.records:
                attrs = self.records[target]
            else:
                unit, _, attrs = self.reader.die_at(target)
        return None

    def _name(self, attrs: dict[int, tuple[int, int]]) -> int | None:
        found = self._follow(attrs, AT_NAME)
        return None if found is None else self._string(self.reader.string(found[0], *found[1]))

    def _file(self, unit: Unit, index: int) -> int | None:
        if unit.offset not in self._files:
            self._files[unit.offset] = self.reader.file_table(unit)
        return self._string(self._files[unit.offset].get(index))

    def _declaration(self, attrs: dict[int, tuple[int, int]]) -> tuple[int | None, int | None]:
        found = self._follow(attrs, AT_DECL_FILE)
        if found is None:
            return None, None
        file = self._file(found[0], found[1][1])
        line = self._follow(attrs, AT_DECL_LINE)
        return file, None if line is None else line[1][1]

    def _inline(self, attrs: dict[int, tuple[int, int]]) -> list:
        name = self._name(attrs)
        call_file = attrs.get(AT_CALL_FILE)
        call_line = attrs.get(AT_CALL_LINE)
        if AT_LOW_PC in attrs:
            low: int | None = self.reader.address(self.unit, *attrs[AT_LOW_PC])
        else:
            ranges = self.reader.ranges(self.unit, attrs)
            low = ranges[0][0] if ranges else None  # the first non-empty range
        return [self._string("<unknown>") if name is None else name,
                None if call_file is None else self._file(self.unit, call_file[1]),
                None if call_line is None else call_line[1], low]


def _join(*parts: str) -> str:
    """posixpath-style join (an absolute part restarts the path), then drop "." parts."""
    path = ""
    for part in parts:
        path = part if part.startswith("/") or not path else f"{path}/{part}" if part else path
    kept = [p for p in path.split("/") if p not in ("", ".")]
    return ("/" if path.startswith("/") else "") + "/".join(kept) or "."
