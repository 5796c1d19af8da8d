"""BTF: struct layouts name a slot by its member path."""

from __future__ import annotations

import struct

import pytest

from entrycheck.binary.btf import Btf
from entrycheck.errors import EntrycheckError


def _blob() -> bytes:
    """long; struct inner {void *a, *b;}; struct outer {long x; struct inner in[2];}."""
    strings = b"\0long\0inner\0a\0b\0outer\0x\0in\0"
    off = {name: strings.index(b"\0" + name.encode() + b"\0") + 1
           for name in ("long", "inner", "a", "b", "outer", "x", "in")}

    def t(name: int, kind: int, vlen: int, size: int) -> bytes:
        return struct.pack("<III", name, kind << 24 | vlen, size)

    types = b"".join([
        t(off["long"], 1, 0, 8) + struct.pack("<I", 64),          # 1: int
        t(0, 2, 0, 0),                                            # 2: void *
        t(off["inner"], 4, 2, 16) + struct.pack("<III", off["a"], 2, 0)
        + struct.pack("<III", off["b"], 2, 64),                   # 3: struct inner
        t(off["outer"], 4, 2, 40) + struct.pack("<III", off["x"], 1, 0)
        + struct.pack("<III", off["in"], 5, 64),                  # 4: struct outer
        t(0, 3, 0, 0) + struct.pack("<III", 3, 1, 2),             # 5: struct inner[2]
    ])
    header = struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(types), len(types),
                         len(strings))
    return header + types + strings


def test_member_paths_through_structs_and_arrays():
    btf = Btf(_blob())
    outer = btf.structs["outer"]
    assert btf.size(outer) == 40
    assert btf.member_path(outer, 0) == ".x"
    assert btf.member_path(outer, 8) == ".in[0].a"
    assert btf.member_path(outer, 32) == ".in[1].b"
    assert btf.member_path(outer, 40) is None


def test_not_btf_and_truncated_are_errors():
    with pytest.raises(EntrycheckError, match="magic"):
        Btf(b"\0" * 32)
    with pytest.raises(EntrycheckError, match="truncated"):
        Btf(_blob()[:40])
