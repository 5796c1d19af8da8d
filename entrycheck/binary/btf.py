"""The kernel's BTF (`.BTF`, CONFIG_DEBUG_INFO_BTF): struct layouts, to name a data slot by
its member path (`x86_init+0x48` is `x86_init.resources.memory_setup`). BTF stays in a
vmlinux without DWARF; its format is the kernel's Documentation/bpf/btf.rst."""

from __future__ import annotations

import struct
from typing import NamedTuple

from entrycheck.errors import EntrycheckError

MAGIC = 0xEB9F
_STRUCT, _UNION, _ARRAY, _TYPEDEF, _VAR = 4, 5, 3, 8, 14
_QUALIFIERS = frozenset({8, 9, 10, 11, 18})  # typedef, volatile, const, restrict, type tag
# bytes after the common 12-byte header, per kind: (fixed, per member)
_EXTRA = {1: (4, 0), 2: (0, 0), 3: (12, 0), 4: (0, 12), 5: (0, 12), 6: (0, 8), 7: (0, 0),
          8: (0, 0), 9: (0, 0), 10: (0, 0), 11: (0, 0), 12: (0, 0), 13: (0, 8), 14: (4, 0),
          15: (0, 12), 16: (0, 0), 17: (4, 0), 18: (0, 0), 19: (0, 12)}
_MAX_DEPTH = 16


class _Type(NamedTuple):
    kind: int
    name: str
    size_or_type: int   # size (struct, union, int), else the referenced type id
    members: tuple      # struct/union: (offset of members, count, bitfields); array: (elem, n)


class Btf:
    """Types by id and by struct name, read from the `.BTF` section's bytes."""

    def __init__(self, data: bytes):
        if len(data) < 24:
            raise EntrycheckError("BTF section truncated")
        magic, _version, _flags, hdr_len = struct.unpack_from("<HBBI", data, 0)
        if magic != MAGIC:
            raise EntrycheckError("BTF section without the BTF magic (big-endian or not BTF)")
        type_off, type_len, str_off, str_len = struct.unpack_from("<IIII", data, 8)
        types = data[hdr_len + type_off: hdr_len + type_off + type_len]
        strings = data[hdr_len + str_off: hdr_len + str_off + str_len]
        if len(types) != type_len or len(strings) != str_len:
            raise EntrycheckError("BTF section truncated")
        self.types: list[_Type | None] = [None]  # type ids start at 1
        self.structs: dict[str, int] = {}
        self.variables: dict[str, int] = {}
        try:
            self._parse(types, strings)
        except struct.error:
            raise EntrycheckError("BTF section truncated inside a type") from None

    def _parse(self, types: bytes, strings: bytes) -> None:
        self._types, self._strings = types, strings
        unpack, find = struct.unpack_from, strings.find
        pos = 0
        while pos + 12 <= len(types):
            name_off, info, size_or_type = unpack("<III", types, pos)
            kind, vlen = (info >> 24) & 0x1F, info & 0xFFFF
            fixed, each = _EXTRA.get(kind, (None, None))
            if fixed is None:
                raise EntrycheckError(f"BTF type of unknown kind {kind}")
            members: tuple = (pos + 12, vlen, bool(info >> 31))
            if kind == _ARRAY:
                elem, _index, nelems = unpack("<III", types, pos + 12)
                members = (elem, nelems)
            name = ""
            if name_off and kind in (_STRUCT, _VAR):
                end = find(b"\0", name_off)
                name = strings[name_off:end if end >= 0 else len(strings)].decode("latin-1")
            pos += 12 + fixed + each * vlen
            self.types.append(_Type(kind, name, size_or_type, members))
            if kind == _STRUCT and name:
                self.structs.setdefault(name, len(self.types) - 1)
            elif kind == _VAR:
                self.variables.setdefault(name, size_or_type)

    def _members(self, t: _Type) -> list[tuple[str, int, int]]:
        """A struct's or union's (name, type, bit offset) members."""
        pos, vlen, bitfields = t.members
        out = []
        for i in range(min(vlen, (len(self._types) - pos) // 12)):
            name_off, m_type, m_off = struct.unpack_from("<III", self._types, pos + 12 * i)
            end = self._strings.find(b"\0", name_off)
            name = self._strings[name_off:end if end >= 0 else None].decode("latin-1")
            out.append((name, m_type, m_off & 0xFFFFFF if bitfields else m_off))
        return out

    def _resolved(self, type_id: int) -> _Type | None:
        for _ in range(_MAX_DEPTH):
            t = self.types[type_id] if 0 < type_id < len(self.types) else None
            if t is None or t.kind not in _QUALIFIERS:
                return t
            type_id = t.size_or_type
        return None

    def size(self, type_id: int) -> int:
        t = self._resolved(type_id)
        if t is None:
            return 0
        if t.kind == _ARRAY:
            elem, n = t.members
            return self.size(elem) * n
        if t.kind == 2:  # pointer
            return 8
        return t.size_or_type

    def member_path(self, type_id: int, offset: int) -> str | None:
        """`.a.b[2].c` for the byte at `offset` inside a value of `type_id`, as deep as
        the layout goes (None when the offset is outside it)."""
        parts: list[str] = []
        for _ in range(_MAX_DEPTH):
            t = self._resolved(type_id)
            if t is None:
                break
            if t.kind == _ARRAY:
                elem, n = t.members
                size = self.size(elem)
                if not size or offset >= size * n:
                    return None
                parts.append(f"[{offset // size}]")
                type_id, offset = elem, offset % size
                continue
            if t.kind not in (_STRUCT, _UNION):
                break
            hit = None
            for m_name, m_type, bits in self._members(t):
                start = bits // 8
                if start <= offset < start + max(self.size(m_type), 1):
                    hit = (m_name, m_type, start)
                    break
            if hit is None:
                return None
            m_name, type_id, start = hit
            if m_name:
                parts.append(f".{m_name}")
            offset -= start
        return "".join(parts) if parts else None

    def member(self, type_id: int, path: str) -> tuple[int, int] | None:
        """(byte offset, size) of member path `hdr.hardware_subarch` inside a value of
        `type_id` (None when a member is missing)."""
        offset = 0
        for part in path.split("."):
            t = self._resolved(type_id)
            if t is None or t.kind not in (_STRUCT, _UNION):
                return None
            hit = next(((m_type, bits) for m_name, m_type, bits in self._members(t)
                        if m_name == part), None)
            if hit is None:
                return None
            type_id, offset = hit[0], offset + hit[1] // 8
        return offset, self.size(type_id)
