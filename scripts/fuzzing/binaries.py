"""Fuzz families of binary inputs: ELF images (mutations of the sample kernels' headers,
section table, symbols, relocations, notes and DWARF), bzImage headers, --build-dir
trees and cache entries."""

from __future__ import annotations

import functools
import os
import random
import shutil
import struct
import sys
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

from entrycheck.cache import entry_contents, entry_parts
from fuzzing.common import (
    COMPRESSED,
    SAMPLE,
    Case,
    Corpus,
    fifo,
    flip,
    interesting,
    pick,
    special,
)
from fuzzing.documents import mutate_json

# -- ELF ----------------------------------------------------------------------------------


Field = tuple[int, str, int, str]


class Elf:
    """Offsets of the header fields and tables of an ELF64/ELF32 little-endian image."""

    def __init__(self, data: bytes):
        self.data = data
        self.b64 = data[4] == 2
        if self.b64:
            self.shoff, = struct.unpack_from("<Q", data, 0x28)
            self.shentsize, self.shnum, self.shstrndx = struct.unpack_from("<HHH", data, 0x3A)
        else:
            self.shoff, = struct.unpack_from("<I", data, 0x20)
            self.shentsize, self.shnum, self.shstrndx = struct.unpack_from("<HHH", data, 0x2E)
        self.sections = [self._section(i) for i in range(self.shnum)]
        names = self.sections[self.shstrndx]
        table = data[names["offset"] : names["offset"] + names["size"]]
        for s in self.sections:
            s["name"] = table[s["name_off"] : table.index(b"\0", s["name_off"])].decode()
        self.by_name = {s["name"]: s for s in self.sections}

    # field name -> (offset in the 64-bit header, format, offset in 32-bit, format)
    SH_FIELDS: ClassVar[dict[str, Field]] = {
                 "name_off": (0, "I", 0, "I"), "type": (4, "I", 4, "I"),
                 "flags": (8, "Q", 8, "I"), "addr": (16, "Q", 12, "I"),
                 "offset": (24, "Q", 16, "I"), "size": (32, "Q", 20, "I"),
                 "link": (40, "I", 24, "I"), "info": (44, "I", 28, "I"),
                 "entsize": (56, "Q", 36, "I")}
    HDR_FIELDS: ClassVar[dict[str, Field]] = {
                  "e_type": (0x10, "H", 0x10, "H"), "e_machine": (0x12, "H", 0x12, "H"),
                  "e_entry": (0x18, "Q", 0x18, "I"), "e_phoff": (0x20, "Q", 0x1C, "I"),
                  "e_shoff": (0x28, "Q", 0x20, "I"), "e_ehsize": (0x34, "H", 0x28, "H"),
                  "e_phentsize": (0x36, "H", 0x2A, "H"), "e_phnum": (0x38, "H", 0x2C, "H"),
                  "e_shentsize": (0x3A, "H", 0x2E, "H"), "e_shnum": (0x3C, "H", 0x30, "H"),
                  "e_shstrndx": (0x3E, "H", 0x32, "H")}

    def _section(self, i: int) -> dict:
        base = self.shoff + i * self.shentsize
        out = {"index": i, "header": base}
        for name, (o64, f64, o32, f32) in self.SH_FIELDS.items():
            off, fmt = (o64, f64) if self.b64 else (o32, f32)
            out[name] = struct.unpack_from("<" + fmt, self.data, base + off)[0]
        return out

    def field_at(self, fields: dict, name: str) -> tuple[int, str]:
        o64, f64, o32, f32 = fields[name]
        return (o64, f64) if self.b64 else (o32, f32)

    def set_header(self, data: bytearray, name: str, value: int) -> None:
        off, fmt = self.field_at(self.HDR_FIELDS, name)
        struct.pack_into("<" + fmt, data, off, value & ((1 << 8 * struct.calcsize(fmt)) - 1))

    def set_section(self, data: bytearray, section: dict, name: str, value: int) -> None:
        off, fmt = self.field_at(self.SH_FIELDS, name)
        struct.pack_into("<" + fmt, data, section["header"] + off,
                         value & ((1 << 8 * struct.calcsize(fmt)) - 1))

    def symbol_offset(self, name: str) -> int | None:
        """File offset of the first .symtab entry called `name`."""
        symtab, strtab = self.by_name[".symtab"], self.sections[self.by_name[".symtab"]["link"]]
        size = 24 if self.b64 else 16
        names = self.data[strtab["offset"] : strtab["offset"] + strtab["size"]]
        for pos in range(symtab["offset"], symtab["offset"] + symtab["size"], size):
            off, = struct.unpack_from("<I", self.data, pos)
            if names[off : names.find(b"\0", off)] == name.encode():
                return pos
        return None

    def notes(self) -> list[tuple[int, int, str]]:
        """(file offset of the note header, type, owner) of each note in .notes."""
        sec, out, pos = self.by_name[".notes"], [], 0
        blob = self.data[sec["offset"] : sec["offset"] + sec["size"]]
        while pos + 12 <= len(blob):
            namesz, descsz, ntype = struct.unpack_from("<III", blob, pos)
            owner = blob[pos + 12 : pos + 12 + namesz].rstrip(b"\0").decode()
            out.append((sec["offset"] + pos, ntype, owner))
            pos += 12 + (namesz + 3 & ~3) + (descsz + 3 & ~3)
        return out


ELF_COMMANDS = (["entries"], ["entries"], ["entries", "--json"], ["check"],
                ["reach", "--entry", "pvh"], ["skip", "--entry", "xen-pv"],
                ["why", "--entry", "pvh", "x86_64_start_kernel"], ["report", "-o", "out"])
DEBUG = (".debug_info", ".debug_abbrev", ".debug_aranges", ".debug_line", ".debug_str",
         ".debug_line_str")


def gen_elf(rng: random.Random, work: Path, corpus: Corpus) -> Case:
    base = corpus.elf if rng.random() < 0.8 else pick(rng, (corpus.i386, corpus.compressed))
    elf = Elf(base)
    data = bytearray(base)
    target = work / "vmlinux"
    kind = pick(rng, ("header", "header", "section", "section", "section", "nobits",
                      "symbol", "rela", "note", "xen", "dwarf", "dwarf", "flip", "truncate",
                      "special", "machine", "endian", "stripped"))
    if kind == "header":
        name = pick(rng, list(Elf.HDR_FIELDS))
        elf.set_header(data, name, interesting(rng))
        kind = f"header {name}"
    elif kind == "section":
        sec = pick(rng, elf.sections[1:])
        name = pick(rng, list(Elf.SH_FIELDS))
        elf.set_section(data, sec, name, interesting(rng))
        kind = f"section {name}"
    elif kind == "nobits":
        names = [n for n in (".altinstructions", ".init.data", ".data", ".text", ".notes",
                             ".altinstr_replacement", ".head.text") if n in elf.by_name]
        sec = elf.by_name[pick(rng, names)]
        elf.set_section(data, sec, "type", 8)
        elf.set_section(data, sec, "size", pick(rng, (1 << 40, 1 << 63, 1 << 31, 1 << 20)))
    elif kind == "symbol":
        symtab = elf.by_name.get(".symtab")
        size = 24 if elf.b64 else 16
        if symtab and symtab["size"] >= size:
            pos = symtab["offset"] + size * rng.randrange(symtab["size"] // size)
            fields = ((0, "I"), (4, "B"), (6, "H"), (8, "Q"), (16, "Q")) if elf.b64 else \
                ((0, "I"), (4, "I"), (8, "I"), (12, "B"), (14, "H"))
            off, fmt = pick(rng, fields)
            struct.pack_into("<" + fmt, data, pos + off,
                             interesting(rng, 8 * struct.calcsize(fmt)))
    elif kind == "rela":
        relas = [s for s in elf.sections if s["type"] == 4 and s["size"] >= 24]
        if relas:
            sec = pick(rng, relas)
            pos = sec["offset"] + 24 * rng.randrange(sec["size"] // 24)
            which = rng.randrange(4)
            if which == 0:
                struct.pack_into("<Q", data, pos, interesting(rng))
            elif which == 1:  # symbol index
                struct.pack_into("<I", data, pos + 12, interesting(rng, 32))
            elif which == 2:  # type
                struct.pack_into("<I", data, pos + 8, interesting(rng, 32))
            else:
                struct.pack_into("<q", data, pos + 16, interesting(rng) - (1 << 63))
    elif kind == "stripped" and corpus.stripped is not None:
        target = corpus.stripped
        kind = "special stripped"
    elif kind == "note" and ".notes" in elf.by_name:
        pos, _, _ = pick(rng, elf.notes())
        struct.pack_into("<I", data, pos + 4 * rng.randrange(3), interesting(rng, 32))
    elif kind == "xen" and ".notes" in elf.by_name:
        kind = pick(rng, ("phys32 nowhere", "entry zero", "startup_xen zero", "entry nowhere"))
        for pos, ntype, owner in elf.notes():
            if owner != "Xen":
                continue
            namesz, descsz = struct.unpack_from("<II", data, pos)
            desc = pos + 12 + (namesz + 3 & ~3)
            if ntype == 18 and kind == "phys32 nowhere" and descsz == 4:
                struct.pack_into("<I", data, desc, 0x7000000)
            if ntype == 1 and kind in ("entry zero", "entry nowhere") and descsz == 8:
                struct.pack_into("<Q", data, desc, 0 if kind == "entry zero" else 1 << 40)
        sym = elf.symbol_offset("startup_xen") if kind == "startup_xen zero" else None
        if sym is not None:
            struct.pack_into("<Q" if elf.b64 else "<I", data, sym + (8 if elf.b64 else 4), 0)
    elif kind == "dwarf" and (present := [n for n in DEBUG if n in elf.by_name]):
        sec = elf.by_name[pick(rng, present)]
        start, end = sec["offset"], sec["offset"] + sec["size"]
        how = pick(rng, ("zero", "flip", "size", "type", "truncate-unit"))
        if how == "zero":
            data[start:end] = bytes(end - start)
        elif how == "flip":
            flip(rng, data, start, end, rng.randint(1, 8))
        elif how == "size":
            elf.set_section(data, sec, "size", rng.randrange(sec["size"] + 64))
        elif how == "type":
            elf.set_section(data, sec, "type", pick(rng, (4, 8, 9, 2, 0x6FFFFFFF)))
        else:
            data[start : start + 4] = struct.pack("<I", interesting(rng, 32))
        kind = f"dwarf {how}"
    elif kind in ("flip", "dwarf"):
        flip(rng, data)
    elif kind == "truncate":
        del data[rng.randrange(len(data)):]
    elif kind == "machine":
        elf.set_header(data, "e_machine", pick(rng, (3, 62, 183, 0, 40)))
    elif kind == "endian":
        data[5] = pick(rng, (0, 2, 3))
        if rng.random() < 0.5:
            data[4] = pick(rng, (0, 1, 2, 3))
    elif kind == "special":
        sub, target = special(rng, work, "vmlinux")
        kind = f"special {sub}"
        if sub == "empty" and rng.random() < 0.5:
            target.write_bytes(pick(rng, (b"hello\n", b"\x7fEL", b"\x7fELF", bytes(64),
                                          b"MZ" + bytes(0x300))))
            kind = "not elf"
    if not kind.startswith(("special", "not elf")):
        target.write_bytes(bytes(data))
    argv = [*pick(rng, ELF_COMMANDS)]
    argv.insert(1, str(target))
    # i386 kernels have no xen-pv entry (32-bit PV guests went in 5.9): nothing to warn of
    check = _xen_check(kind, argv) if elf.b64 else None
    return Case(f"elf/{kind.split(' ')[0]}", argv, check=check)


def _xen_check(kind: str, argv: list[str]) -> Callable[[Path], str | None] | None:
    """A Xen note or symbol made useless must be said, not dropped without a word."""
    wanted = {"phys32 nowhere": ("XEN_ELFNOTE_PHYS32_ENTRY", None),
              "entry zero": ("XEN_ELFNOTE_ENTRY", None),
              "entry nowhere": ("XEN_ELFNOTE_ENTRY", None),
              "startup_xen zero": ("startup_xen", "xen-pv")}.get(kind)
    if wanted is None or argv[0] != "entries":
        return None
    word, entry = wanted

    def check(work: Path) -> str | None:
        err = (work / ".stderr").read_text(errors="replace")
        out = (work / ".stdout").read_text(errors="replace")
        if entry is not None and entry in out:
            return None
        if "warning" in err and word in err:
            return None
        return f"{kind}: no warning on stderr naming {word}"
    return check


# -- bzImage ------------------------------------------------------------------------------

BZ_FIELDS = {"setup_sects": (0x1F1, "B"), "boot_flag": (0x1FE, "H"), "magic": (0x202, "I"),
             "version": (0x206, "H"), "kernel_version": (0x20E, "H"), "loadflags": (0x211, "B"),
             "syssize": (0x1F4, "I"), "xloadflags": (0x236, "H"),
             "payload_offset": (0x248, "I"), "payload_length": (0x24C, "I"),
             "handover_offset": (0x264, "I"), "kernel_info_offset": (0x268, "I"),
             "e_lfanew": (0x3C, "I")}


def mutate_bzimage(rng: random.Random, corpus: Corpus) -> tuple[str, bytes]:
    data = bytearray(corpus.bzimage)
    pe, = struct.unpack_from("<I", data, 0x3C)
    kind = pick(rng, ("field", "field", "lfanew-end", "pe", "pe-section", "truncate", "flip"))
    if kind == "field":
        name = pick(rng, list(BZ_FIELDS))
        off, fmt = BZ_FIELDS[name]
        struct.pack_into("<" + fmt, data, off, interesting(rng, 8 * struct.calcsize(fmt)))
        kind = f"field {name}"
    elif kind == "lfanew-end":
        at = len(data) - rng.randint(1, 30)
        struct.pack_into("<I", data, 0x3C, at)
        data[at : at + 4] = b"PE\0\0"
        del data[at + 4 + rng.randrange(24):]
    elif kind == "pe":
        off, fmt = pick(rng, ((4, "H"), (6, "H"), (20, "H"), (24, "H"), (24 + 16, "I"),
                              (24 + 20, "I"), (24 + 56, "I")))
        struct.pack_into("<" + fmt, data, pe + off, interesting(rng, 8 * struct.calcsize(fmt)))
    elif kind == "pe-section":
        nsect, = struct.unpack_from("<H", data, pe + 6)
        opt, = struct.unpack_from("<H", data, pe + 20)
        sec = pe + 24 + opt + 40 * rng.randrange(max(nsect, 1))
        off = pick(rng, (8, 12, 16, 20))
        if sec + off + 4 <= len(data):
            struct.pack_into("<I", data, sec + off, interesting(rng, 32))
    elif kind == "truncate":
        del data[rng.randrange(0x400 if rng.random() < 0.7 else len(data)):]
    else:
        flip(rng, data, 0, 0x400)
    return kind, bytes(data)


def gen_bzimage(rng: random.Random, work: Path, corpus: Corpus) -> Case:
    kind, data = mutate_bzimage(rng, corpus)
    bz = work / "bzImage"
    bz.write_bytes(data)
    how = rng.random()
    if how < 0.6:
        argv = ["entries", str(bz)]
    elif how < 0.8:
        argv = ["entries", str(SAMPLE), "--compressed", str(COMPRESSED), "--bzimage", str(bz)]
    else:
        argv = ["reach", str(SAMPLE), "--compressed", str(COMPRESSED), "--bzimage", str(bz),
                "--entry", "efi-pe"]
    return Case(f"bzimage/{kind.split(' ')[0]}", argv)


# -- build trees --------------------------------------------------------------------------

TREE = {"vmlinux": "vmlinux", "compressed": "arch/x86/boot/compressed/vmlinux",
        "bzImage": "arch/x86/boot/bzImage"}


def gen_build_dir(rng: random.Random, work: Path, corpus: Corpus) -> Case:
    tree = work / "build"
    sources = {"vmlinux": corpus.elf, "compressed": corpus.compressed, "bzImage": corpus.bzimage}
    labels = []
    for part, rel in TREE.items():
        path = tree / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        how = pick(rng, ("normal", "normal", "normal", "fifo", "folder", "dev-zero", "missing",
                         "empty", "garbage", "swapped", "mutated", "dangling"))
        labels.append(how)
        if how == "normal":
            path.write_bytes(sources[part])
        elif how == "fifo":
            fifo(path)
        elif how == "folder":
            path.mkdir()
        elif how == "dev-zero":
            path.symlink_to("/dev/zero")
        elif how == "dangling":
            path.symlink_to(tree / "nowhere")
        elif how == "empty":
            path.write_bytes(b"")
        elif how == "garbage":
            path.write_bytes(rng.randbytes(rng.randrange(1, 4096)))
        elif how == "swapped":
            path.write_bytes(sources[pick(rng, [p for p in sources if p != part])])
        elif how == "mutated":
            path.write_bytes(mutate_bzimage(rng, corpus)[1] if part == "bzImage" else
                             _flip_bytes(rng, sources[part]))
    if rng.random() < 0.05:
        shutil.rmtree(tree)
        if rng.random() < 0.5:
            fifo(tree)
    cmd = pick(rng, (["entries"], ["entries"], ["check"], ["reach", "--entry", "efi-pe"],
                     ["skip", "--entry", "decompressor-64"]))
    worst = next((h for h in labels if h != "normal"), "normal")
    return Case(f"build-dir/{worst}", [*cmd, "--build-dir", str(tree)])


def _flip_bytes(rng: random.Random, data: bytes) -> bytes:
    out = bytearray(data)
    flip(rng, out, 0, min(len(out), 0x200))
    return bytes(out)


# -- cache --------------------------------------------------------------------------------


def gen_cache(rng: random.Random, work: Path, corpus: Corpus) -> Case:
    cache = work / "xdg" / "entrycheck"
    shutil.copytree(corpus.cache / "entrycheck", cache, symlinks=True)
    entries = sorted(p for p in cache.rglob("*.json.z"))
    victim = pick(rng, entries)
    kind = pick(rng, ("overwrite", "overwrite", "truncate", "garbage", "forged", "forged",
                      "blobs", "group-write", "other-owner", "fifo", "dev-zero", "folder",
                      "pickle", "cache-is-file", "read-only", "huge"))
    raw = victim.read_bytes()
    if kind == "overwrite":
        at = rng.randrange(len(raw))
        victim.write_bytes(raw[:at] + pick(rng, (b"\x80\x63", rng.randbytes(8))) + raw[at + 2:])
    elif kind == "truncate":
        victim.write_bytes(raw[: rng.randrange(len(raw))])
    elif kind == "garbage":
        victim.write_bytes(zlib.compress(pick(rng, (b"", b"\n", b"{}\n", b"[" * 100000,
                                                    b'{"format":"entrycheck-cache/2"}\n'))))
    elif kind in ("forged", "blobs"):  # well-formed entries (checksum and all) with odd insides
        key, data, blobs = entry_contents(raw)
        if kind == "forged":
            data = mutate_json(rng, data)
        elif blobs:
            name = pick(rng, sorted(blobs))
            blob = blobs[name]
            blobs[name] = pick(rng, (blob[: rng.randrange(len(blob) + 1)], rng.randbytes(17),
                                     blob + b"\xff", b""))
        limit = sys.get_int_max_str_digits()
        sys.set_int_max_str_digits(0)  # the mutated data may hold integers of any length
        try:
            victim.write_bytes(b"".join(entry_parts(key, data, blobs)))
        finally:
            sys.set_int_max_str_digits(limit)
    elif kind == "group-write":
        victim.chmod(0o664)
    elif kind == "other-owner":
        try:
            os.chown(victim, 12345, 12345)
        except OSError:
            victim.chmod(0o666)
    elif kind in ("fifo", "dev-zero", "folder"):
        victim.unlink()
        if kind == "fifo":
            fifo(victim)
        elif kind == "folder":
            victim.mkdir()
        else:
            victim.symlink_to("/dev/zero")
    elif kind == "pickle":
        import pickle

        class Boom:
            def __reduce__(self):
                return (os.system, (f"touch {work / 'PWNED'}",))
        blob = pickle.dumps(Boom())
        victim.write_bytes(blob)
        victim.with_suffix(".pickle").write_bytes(blob)
    elif kind == "cache-is-file":
        shutil.rmtree(cache)
        cache.write_text("x\n")
    elif kind == "read-only":
        for p in [cache, *cache.rglob("*")]:
            if p.is_dir():
                p.chmod(0o555)
    elif kind == "huge":
        victim.write_bytes(zeros_deflated())
    cmd = pick(rng, (["entries"], ["check"], ["why", "--entry", "pvh", "x86_64_start_kernel"],
                     ["report", "-o", "out"], ["reach", "--entry", "pvh", "--scope", "all"]))
    argv = [cmd[0], str(SAMPLE), *cmd[1:]]

    def check(w: Path) -> str | None:
        if (w / "PWNED").exists():
            return "the cache ran code"
        if cache.is_dir():
            left = [p.name for p in cache.rglob("*.tmp")]
            if left:
                return f"cache temp files left: {left[:3]}"
        return None
    return Case(f"cache/{kind}", argv, env={"XDG_CACHE_HOME": str(work / "xdg")}, check=check)


@functools.cache
def zeros_deflated() -> bytes:
    """768 MiB of zeros, deflated (a few MiB): past any cache entry's size, made once."""
    chunk, comp = bytes(1 << 24), zlib.compressobj(1)
    out = [comp.compress(chunk) for _ in range(48)]
    return b"".join(out) + comp.flush()
