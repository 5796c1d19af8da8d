#!/usr/bin/env python3
"""A seeded, bounded fuzz campaign against the entrycheck command line (issue 13).

Each case is a malformed input of one family (ELF mutations of the sample kernel, bzImage
headers, --build-dir trees, rule YAML, trace JSON, baselines, CLI arguments and paths,
cache entries, output targets), written into a folder of its own and given to the CLI
in a child process under a timeout and an address-space limit. Outcomes:

  ok         exit 0, or 1 from a command whose 1 means findings (check, validate, crosscheck)
  error      exit 2 with exactly one stderr line `entrycheck: error: ...` under 300 chars
  bad-line   exit 2, but stderr is not that one line (usage text, several lines, too long)
  internal   the CLI's last-resort handler caught an unexpected exception (a bug hidden)
  traceback  a Python traceback
  hang       killed at the timeout
  memory     MemoryError, or a peak RSS over 1 GiB
  unsafe     the case's own check failed (a file lost or replaced, a temp file left, ...)
  other      any other exit code or signal

Case `i` of family `f` under seed `s` is always the same input: `--family f --index i`
re-runs one, `--keep DIR` keeps its folder. The `fork` runner (default) forks a parent
that has imported entrycheck, so a case costs its analysis and not Python's start-up;
`exec` starts `python -m entrycheck.cli` per case.

    .venv/bin/python scripts/fuzz.py --seed 1 --cases 500 --json fuzz-summary.json
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import io
import json
import os
import random
import resource
import shutil
import signal
import stat
import struct
import subprocess
import sys
import tempfile
import time
import traceback
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "sample_vmlinux" / "vmlinux"
COMPRESSED = ROOT / "sample_vmlinux" / "compressed" / "vmlinux"
BZIMAGE = ROOT / "sample_vmlinux" / "compressed" / "bzImage"
I386 = ROOT / "sample_vmlinux" / "i386" / "vmlinux"
RULES = ROOT / "rules"
GIB = 1 << 30
FINDINGS_COMMANDS = ("check", "validate", "crosscheck")
INTERESTING = (0, 1, 2, 7, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0x8000, 0xFFFF, 0x10000,
               0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 1 << 32, 1 << 40, 1 << 62, 1 << 63,
               (1 << 64) - 1)
CLASSES = ("ok", "error", "bad-line", "internal", "traceback", "hang", "memory", "unsafe",
           "other")


@dataclass
class Case:
    """One input: the argv, files made in the case folder, and a check of what it left."""

    label: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    check: Callable[[Path], str | None] | None = None


@dataclass
class Corpus:
    """The valid inputs mutations start from, made once per campaign."""

    folder: Path
    elf: bytes
    i386: bytes
    compressed: bytes
    bzimage: bytes
    rules: dict[str, str]
    trace: dict
    native_trace: dict
    baseline: dict
    cache: Path
    stripped: Path | None


# -- helpers ------------------------------------------------------------------------------


def pick(rng: random.Random, values):
    return values[rng.randrange(len(values))]


def interesting(rng: random.Random, bits: int = 64) -> int:
    if rng.random() < 0.15:
        return rng.getrandbits(bits)
    return pick(rng, INTERESTING) & ((1 << bits) - 1)


def fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def special(rng: random.Random, work: Path, name: str) -> tuple[str, Path]:
    """A path that is not a regular file: FIFO, device, folder, dangling or device link."""
    kind = pick(rng, ("fifo", "dev-zero", "dev-null", "folder", "dangling", "link-zero",
                      "missing", "empty"))
    path = work / name
    if kind == "fifo":
        fifo(path)
    elif kind == "dev-zero":
        path = Path("/dev/zero")
    elif kind == "dev-null":
        path = Path("/dev/null")
    elif kind == "folder":
        path.mkdir()
    elif kind == "dangling":
        path.symlink_to(work / "nowhere")
    elif kind == "link-zero":
        path.symlink_to("/dev/zero")
    elif kind == "empty":
        path.write_bytes(b"")
    return kind, path


def flip(rng: random.Random, data: bytearray, start: int = 0, end: int | None = None,
         count: int | None = None) -> None:
    end = len(data) if end is None else end
    for _ in range(count or rng.randint(1, 16)):
        if end > start:
            data[rng.randrange(start, end)] ^= 1 << rng.randrange(8)


def no_temp_left(*folders: Path) -> Callable[[Path], str | None]:
    def check(work: Path) -> str | None:
        for folder in folders:
            if folder.is_dir():
                left = [p.name for p in folder.rglob("*") if p.name.endswith((".tmp", ".old"))]
                if left:
                    return f"temp files left in {folder.name}: {left[:3]}"
        return None
    return check


def all_checks(*checks) -> Callable[[Path], str | None]:
    def check(work: Path) -> str | None:
        for c in checks:
            if c is not None and (msg := c(work)):
                return msg
        return None
    return check


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
    return Case(f"elf/{kind.split(' ')[0]}", argv, check=_xen_check(kind, argv))


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


# -- rules --------------------------------------------------------------------------------

BAD_MESSAGES = ("'{'", "'{}'", "'{nosuch}'", "'{entry:999999999}'", "'{entry!r}'",
                "'{entry.__class__}'", "'{0}'", "'{entry[0]}'", "'}'", "'{{'",
                "'{entry:>{symbol}}'")
BAD_REGEXES = ("'a{99999999999}'", "'(.*)*(.*)*(.*)*!'", "'(\\w|\\w)*!'", "'(?P<x>'",
               "'(a)\\1'", "'(?=a)'", "'" + "(" * 500 + "a" + ")" * 500 + "'",
               "'" + "a" * 5000 + "'", "'[z-a]'", "'\\'", "'((a{1000}){1000}){1000}'",
               "'(?i)" + "a?" * 300 + "a" * 300 + "'")


def gen_rules(rng: random.Random, work: Path, corpus: Corpus) -> Case:
    _, text = pick(rng, sorted(corpus.rules.items()))
    lines = text.splitlines(keepends=True)
    kind = pick(rng, ("non-utf8", "list-key", "deep", "aliases", "message", "message",
                      "regex", "regex", "types", "dup", "lines", "chars", "tags", "empty",
                      "huge", "special", "folder"))
    raw: bytes | None = None
    if kind == "non-utf8":
        at = rng.randrange(len(text))
        raw = text[:at].encode() + pick(rng, (b"\xff", b"\xc3", b"\x80\x63", b"\xed\xa0\x80")) \
            + text[at:].encode()
    elif kind == "list-key":
        text = pick(rng, ("? [a]\n: 1\n", "- ? [a]\n  : 1\n", "- {[1]: 2}\n",
                          "- id: X\n  ? {a: 1}\n  : 2\n", text + "- ? [x]\n  : y\n"))
    elif kind == "deep":
        n = pick(rng, (25, 1000, 100000))
        text = pick(rng, ("[" * n, "- " + "[" * n + "]" * n, "{a: " * n + "1" + "}" * n,
                          "- " * n + "x"))
    elif kind == "aliases":
        bomb = ["a: &a [x, x, x, x, x, x, x, x, x]"]
        for i in range(1, 12):
            bomb.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}" if i > 1 else "*a"] * 9)
                        + "]")
        text = "- id: X\n  " + "\n  ".join(bomb) + "\n"
    elif kind in ("message", "regex"):
        bad = pick(rng, BAD_MESSAGES if kind == "message" else BAD_REGEXES)
        key = "message" if kind == "message" else pick(rng, ("function", "inlined", "data",
                                                             "instruction"))
        idx = [i for i, line in enumerate(lines) if line.strip().startswith(key + ":")]
        if idx:
            i = pick(rng, idx)
            indent = lines[i][: len(lines[i]) - len(lines[i].lstrip())]
            lines[i] = f"{indent}{key}: {bad}\n"
        else:
            lines.append(f"- id: X1\n  title: t\n  severity: error\n  message: m\n"
                         f"  match: [{{function: {bad}}}]\n  require: {{reached_by_all: []}}\n"
                         if kind == "regex" else f"- id: X1\n  message: {bad}\n")
        text = "".join(lines)
    elif kind == "types":
        idx = [i for i, line in enumerate(lines) if ":" in line and not line.lstrip()
               .startswith("#")]
        if idx:
            i = pick(rng, idx)
            head = lines[i].split(":", 1)[0]
            lines[i] = head + ": " + pick(rng, ("[1]", "{a: 1}", "12", "null", "-1", "1e999",
                                                "!!binary aGVsbG8=", "'" + "x" * 100000 + "'",
                                                "[[[[]]]]", "2001-01-01", "~", ".inf")) + "\n"
        text = "".join(lines)
    elif kind == "dup":
        text = text + text
    elif kind == "lines":
        for _ in range(rng.randint(1, 4)):
            if lines:
                i = rng.randrange(len(lines))
                op = rng.randrange(3)
                if op == 0:
                    del lines[i]
                elif op == 1:
                    lines.insert(rng.randrange(len(lines) + 1), lines[i])
                else:
                    lines[i] = "\t" + lines[i]
        text = "".join(lines)
    elif kind == "chars":
        chars = list(text)
        for _ in range(rng.randint(1, 8)):
            chars[rng.randrange(len(chars))] = pick(rng, list(":-[]{}&*!|>'\"%@`#\t\n\0\x85"))
        text = "".join(chars)
    elif kind == "tags":
        text = pick(rng, ("- !!python/object/apply:os.system ['touch PWNED']\n",
                          "!!python/name:os.system\n", "- id: !!set {a, b}\n",
                          "- &x id: *x\n", "%YAML 9.9\n---\n- 1\n", "--- !foo\n- 1\n"))
    elif kind == "empty":
        text = pick(rng, ("", "---\n", "\n\n", "# nothing\n", "null\n", "[]\n", "{}\n",
                          "--- 1\n--- 2\n", "...\n"))
    elif kind == "huge":
        text = text + "# " + "x" * (2 << 20) + "\n"
    rules_path = work / "rules.yaml"
    if kind == "special":
        sub, rules_path = special(rng, work, "rules.yaml")
        kind = f"special {sub}"
    elif kind == "folder":
        folder = work / "rules"
        folder.mkdir()
        what = pick(rng, ("fifo", "zero", "none", "dir"))
        if what == "fifo":
            fifo(folder / "a.yaml")
        elif what == "zero":
            (folder / "a.yaml").symlink_to("/dev/zero")
        elif what == "dir":
            (folder / "a.yaml").mkdir()
        (folder / "b.yaml").write_text(text)
        rules_path = folder
        kind = f"folder {what}"
    elif raw is not None:
        rules_path.write_bytes(raw)
    else:
        rules_path.write_text(text)
    cmd = ["check", str(SAMPLE)] if rng.random() < 0.85 else ["report", str(SAMPLE), "-o",
                                                              "out"]
    return Case(f"rules/{kind.split(' ')[0]}", [*cmd, "--rules", str(rules_path)],
                check=lambda w: "PWNED exists" if (w / "PWNED").exists() else None)


# -- JSON documents (traces, baselines) -----------------------------------------------------


def random_value(rng: random.Random):
    return pick(rng, (None, True, 0, -1, 1 << 70, 1.5, float("inf"), "", "x" * 100000,
                      "\x00\ud800", [], {}, [1, 2], {"a": 1}, "0xzz", "-0x10", 10 ** 4300))


def mutate_json(rng: random.Random, doc):
    """The document with one value somewhere replaced, deleted or duplicated."""
    doc = json.loads(json.dumps(doc))
    node, path = doc, []
    while isinstance(node, (dict, list)) and node and rng.random() < 0.7:
        key = pick(rng, sorted(node)) if isinstance(node, dict) else rng.randrange(len(node))
        path.append((node, key))
        node = node[key]
    if not path:
        return random_value(rng)
    parent, key = path[-1]
    if rng.random() < 0.2:
        del parent[key]
    else:
        parent[key] = random_value(rng)
    return doc


def dump_json(value) -> str:
    """JSON text, with integers past Python's 4,300-digit default written out too."""
    limit = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(0)
    try:
        return json.dumps(value)
    finally:
        sys.set_int_max_str_digits(limit)


def json_bytes(rng: random.Random, doc) -> tuple[str, bytes]:
    kind = pick(rng, ("value", "value", "value", "shape", "deep", "non-utf8", "syntax",
                      "numbers", "names"))
    if kind == "value":
        try:
            return kind, dump_json(mutate_json(rng, doc)).encode()
        except (ValueError, OverflowError):  # NaN and infinities are written, so: rare
            return kind, b"{}"
    if kind == "shape":
        return kind, pick(rng, (b"[]", b"{}", b"null", b"1", b'"x"', b"", b" ", b"[{}]",
                                b'{"format": []}', b'{"format": {}}'))
    if kind == "deep":
        n = pick(rng, (100, 100000, 1000000))
        return kind, pick(rng, (b"[" * n, b"[" * n + b"]" * n, b'{"a":' * n + b"1" + b"}" * n))
    if kind == "non-utf8":
        text = json.dumps(doc).encode()
        at = rng.randrange(len(text))
        return kind, text[:at] + b"\xff\xfe" + text[at:] + (b" " * (1 << 20)
                                                           if rng.random() < 0.3 else b"")
    if kind == "syntax":
        text = bytearray(json.dumps(doc).encode())
        flip(rng, text, 0, len(text), rng.randint(1, 4))
        return kind, bytes(text)
    if kind == "numbers":
        return kind, json.dumps(doc).replace("0", "1" * 5000, 1).replace("false", "NaN", 1) \
            .encode()
    out = json.loads(json.dumps(doc))
    for item in out.get("functions") or out.get("findings") or []:
        key = "name" if "name" in item else "fingerprint"
        item[key] = pick(rng, (1, None, ["x"], "", "a" * 100000, 1.5, {"x": 1}))
    return kind, json.dumps(out).encode()


def gen_trace(rng: random.Random, work: Path, corpus: Corpus) -> Case:
    kind, data = json_bytes(rng, corpus.trace)
    path = work / "trace.json"
    if rng.random() < 0.08:
        sub, path = special(rng, work, "trace.json")
        kind = f"special {sub}"
    else:
        path.write_bytes(data)
    if rng.random() < 0.6:
        argv = ["validate", str(SAMPLE), "--entry", "pvh", "--trace", str(path)]
    else:  # the mutated file as the entry's trace or as the reference's
        ref = work / "other.json"
        if rng.random() < 0.5:
            ref.write_text(json.dumps(corpus.native_trace))
            pair = ["--trace", str(path), "--reference-trace", str(ref)]
        else:
            ref.write_text(json.dumps(corpus.trace))
            pair = ["--trace", str(ref), "--reference-trace", str(path)]
        argv = ["skip", str(SAMPLE), "--entry", "pvh", "--against", "native", *pair]
    return Case(f"trace/{kind.split(' ')[0]}", argv)


def gen_baseline(rng: random.Random, work: Path, corpus: Corpus) -> Case:
    if rng.random() < 0.3:  # where --write-baseline writes
        kind, target, check = output_target(rng, work, "baseline.json")
        return Case(f"baseline/write-{kind}", ["check", str(SAMPLE), "--write-baseline",
                                               str(target)], check=check)
    kind, data = json_bytes(rng, corpus.baseline)
    path = work / "baseline.json"
    if rng.random() < 0.1:
        sub, path = special(rng, work, "baseline.json")
        kind = f"special {sub}"
    else:
        path.write_bytes(data)
    return Case(f"baseline/{kind.split(' ')[0]}", ["check", str(SAMPLE), "--baseline",
                                                   str(path)])


# -- outputs ------------------------------------------------------------------------------


def output_target(rng: random.Random, work: Path, name: str):
    """A place to write a file (--output, --write-baseline) and the check of what is left."""
    target = work / name
    kind = pick(rng, ("new", "existing-0640", "symlink", "fifo", "folder", "device",
                      "under-file", "read-only", "dangling", "long-name", "newline"))
    checks = [no_temp_left(work)]
    if kind == "new":
        def check(w: Path) -> str | None:
            if not target.is_file():
                return None
            mode = stat.S_IMODE(target.stat().st_mode)
            if mode != 0o644:
                return f"new file mode {mode:o}, not 644 under umask 022"
            if not target.read_bytes().endswith(b"\n"):
                return "no final newline"
            return None
        checks.append(check)
    elif kind == "existing-0640":
        target.write_text("old\n")
        target.chmod(0o640)
        checks.append(lambda w: None if stat.S_IMODE(target.stat().st_mode) == 0o640 else
                      f"mode changed to {stat.S_IMODE(target.stat().st_mode):o}")
    elif kind in ("symlink", "dangling"):
        real = work / "real.txt"
        if kind == "symlink":
            real.write_text("keep\n")
        target.symlink_to(real)
        checks.append(lambda w: None if target.is_symlink() else "symlink replaced")
        if kind == "symlink":
            checks.append(lambda w: None if real.read_text() == "keep\n" else
                          "symlink target written")
    elif kind == "fifo":
        fifo(target)
        checks.append(lambda w: None if stat.S_ISFIFO(os.lstat(target).st_mode) else
                      "FIFO replaced")
    elif kind == "folder":
        target.mkdir()
        checks.append(lambda w: None if target.is_dir() else "folder replaced")
    elif kind == "device":
        target.symlink_to("/dev/null")
        checks.append(lambda w: None if target.is_symlink() else "device link replaced")
    elif kind == "under-file":
        (work / "afile").write_text("x\n")
        target = work / "afile" / "sub"
    elif kind == "read-only":
        ro = work / "ro"
        ro.mkdir()
        ro.chmod(0o555)
        target = ro / name
    elif kind == "long-name":
        target = work / ("n" * 100000)
    elif kind == "newline":
        target = work / "a\nb\rc\x1b[31m"
    return kind, target, all_checks(*checks)


def gen_output(rng: random.Random, work: Path, corpus: Corpus) -> Case:
    if rng.random() < 0.35:
        kind, target, check = output_target(rng, work, "out.txt")
        fmt = pick(rng, ("text", "json", "sarif", "junit"))
        return Case(f"output/check-{kind}", ["check", str(SAMPLE), "--format", fmt,
                                             "--output", str(target)], check=check)
    out = work / "report"
    foreign = None
    kind = pick(rng, ("foreign", "foreign-force", "forged-marker", "forged-marker-force",
                      "dot-force", "previous", "marker-special", "under-file", "read-only",
                      "symlink", "fifo", "nested-foreign", "marker-garbage", "new"))
    force = kind.endswith("-force") or (kind != "new" and rng.random() < 0.4)
    if kind in ("foreign", "foreign-force", "nested-foreign", "forged-marker",
                "forged-marker-force", "marker-special", "marker-garbage", "dot-force",
                "previous"):
        out.mkdir()
        if kind == "nested-foreign":
            (out / "graphs").mkdir()
            foreign = out / "graphs" / "mine.svg"
        elif kind == "previous":
            foreign = None
        else:
            foreign = out / pick(rng, ("notes.txt", "index.html", "report.json", ".git"))
        if foreign is not None:
            foreign.write_text("the user's\n")
        if kind.startswith("forged-marker"):
            files = [str(foreign.relative_to(out))] if foreign else []
            (out / ".entrycheck-report").write_text(json.dumps(
                {"format": "entrycheck-report/1", "files": [*files, "index.html"]}))
        elif kind == "marker-special":
            (out / ".entrycheck-report").symlink_to(pick(rng, ("/dev/zero", "/etc/passwd")))
        elif kind == "marker-garbage":
            (out / ".entrycheck-report").write_bytes(pick(rng, (b"[" * 100000, b"\xff",
                                                                b'{"format": 1}')))
        elif kind == "previous":
            (out / "index.html").write_text("old report\n")
            (out / ".entrycheck-report").write_text(json.dumps(
                {"format": "entrycheck-report/1", "files": ["index.html"]}))
    elif kind == "under-file":
        (work / "afile").write_text("x\n")
        out = work / "afile" / "sub"
    elif kind == "read-only":
        ro = work / "ro"
        ro.mkdir()
        ro.chmod(0o555)
        out = ro / "report"
    elif kind == "symlink":
        (work / "elsewhere").mkdir()
        out.symlink_to(work / "elsewhere")
    elif kind == "fifo":
        fifo(out)
    if kind == "dot-force":
        out_arg, cwd_rel = ".", out
    else:
        out_arg, cwd_rel = str(out), None
    argv = ["report", str(SAMPLE), "-o", out_arg, *(["--force"] if force else [])]

    def check(w: Path) -> str | None:
        if foreign is not None and (not foreign.exists() or
                                    foreign.read_text() != "the user's\n"):
            return f"foreign file {foreign.name} lost or replaced"
        return no_temp_left(w, w / "report")(w)
    case = Case(f"output/report-{kind}{'-force' if force and 'force' not in kind else ''}",
                argv, check=check)
    if cwd_rel is not None:
        case.env["_CWD"] = str(cwd_rel)
    return case


# -- CLI arguments --------------------------------------------------------------------------

LONG = "x" * 100000


def gen_cli(rng: random.Random, work: Path, corpus: Corpus) -> Case:
    s = str(SAMPLE)
    weird = pick(rng, (LONG, "\udcff\udcfe", "a\nb", "\x1b[2J", "", "-", "=", "@", "%s%n",
                       "{entry}", "../" * 50, "/", "/dev/zero", "/proc/self/mem",
                       "é" * 1000, "x=y@32", "x=" + LONG, LONG + "=y"))
    choices = (
        ["entries", weird], ["reach", s, "--entry", weird], ["skip", s, "--entry", "pvh",
                                                             "--against", weird],
        ["why", s, "--entry", "pvh", weird], ["why", s, "--entry", weird, "start_kernel"],
        ["reach", s, "--entry", "pvh", "--define", weird], ["check", s, "--rules", weird],
        ["check", s, "--baseline", weird], ["check", s, "--base", weird],
        ["check", s, "--rules-url", weird], ["check", s, "--source-root", weird],
        ["check", s, "--fail-on", weird], ["check", s, "--format", weird],
        ["entries", s, "--cache-dir", weird], ["validate", s, "--entry", "pvh", "--trace",
                                               weird],
        ["crosscheck", s, "--sample", pick(rng, ("-1", "0", "99999999999999", "x"))],
        ["crosscheck", weird], ["report", s, "-o", weird], ["entries", s, weird],
        [weird], ["entries", "--" + weird], ["reach", s, "--entry", "pvh", "--scope", weird],
        ["trace", s, "--entry", "native", "-o", str(work / "t.json")],
        ["trace", s, "--entry", weird, "-o", str(work / "t.json")],
        ["entries", s, "--bzimage", weird], ["entries", s, "--compressed", weird],
        ["entries", s, "--build-dir", weird],
        ["entries", s, "--cache-dir", pick(rng, ("/dev/null", str(work / "cachefile"),
                                                 "/proc", str(work / "ro")))],
        ["why", s, "--entry", "pvh", "x86_64_start_kernel", "extra", "words"],
    )
    (work / "cachefile").write_text("x\n")
    (work / "ro").mkdir()
    (work / "ro").chmod(0o555)
    argv = list(pick(rng, choices))
    label = argv[0] if argv[0] != weird else "command"
    return Case(f"cli/{label[:20]}", argv)


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
    elif kind in ("forged", "blobs"):
        body = zlib.decompress(raw)
        head, _, rest = body.partition(b"\n")
        header = json.loads(head)
        if kind == "forged":
            header["data"] = mutate_json(rng, header["data"])
        else:
            header["blobs"] = mutate_json(rng, header.get("blobs") or [])
            rest = rest[: rng.randrange(len(rest) + 1)]
        victim.write_bytes(zlib.compress(dump_json(header).encode() + b"\n" + rest))
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
        victim.write_bytes(_ZEROS_2G())
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
def _ZEROS_2G() -> bytes:
    """2 GiB of zeros, deflated (2 MiB), made once."""
    out, chunk, comp = [], bytes(1 << 24), zlib.compressobj(9)
    out = [comp.compress(chunk) for _ in range(128)]
    return b"".join(out) + comp.flush()


FAMILIES: dict[str, Callable[[random.Random, Path, Corpus], Case]] = {
    "elf": gen_elf, "bzimage": gen_bzimage, "build-dir": gen_build_dir, "rules": gen_rules,
    "trace": gen_trace, "baseline": gen_baseline, "cli": gen_cli, "cache": gen_cache,
    "output": gen_output,
}
WEIGHTS = {"elf": 4, "bzimage": 1, "build-dir": 1, "rules": 1.5, "trace": 1, "baseline": 1,
           "cli": 1, "cache": 1, "output": 1}


# -- the corpus -----------------------------------------------------------------------------


def make_corpus(folder: Path) -> Corpus:
    """Valid inputs made once: a trace of each entry from the static reach sets, a
    baseline, a primed cache, a stripped copy of the sample."""
    folder.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "XDG_CACHE_HOME": str(folder / "cache")}
    exe = [sys.executable, "-m", "entrycheck.cli"]

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*exe, *args], capture_output=True, text=True, env=env,
                              cwd=folder, timeout=300)

    traces = {}
    build_id = None
    for entry in ("pvh", "native"):
        reach = json.loads(cli("reach", str(SAMPLE), "--entry", entry, "--json").stdout)
        build_id = reach["build_id"]
        funcs = [{"name": f["name"], "address": f["address"], "order": i, "first_block": i,
                  "physical": i == 0} for i, f in enumerate(reach["reached"])]
        traces[entry] = {"format": "entrycheck-trace/1", "entry": entry, "kernel": str(SAMPLE),
                         "build_id": build_id, "until": "start_kernel", "functions": funcs,
                         "blocks": len(funcs), "unmapped_blocks": 0, "unnamed_blocks": 0,
                         "reached_until": True, "seconds": 1.0, "log_bytes": 1,
                         "command": ["qemu"]}
    cli("check", str(SAMPLE), "--write-baseline", str(folder / "baseline.json"))
    cli("why", str(SAMPLE), "--entry", "pvh", "x86_64_start_kernel")
    cli("report", str(SAMPLE), "-o", str(folder / "report"))
    cli("reach", str(SAMPLE), "--entry", "pvh", "--scope", "all")
    stripped = folder / "vmlinux.stripped"
    try:
        subprocess.run(["objcopy", "--strip-all", str(SAMPLE), str(stripped)], check=True)
    except (OSError, subprocess.CalledProcessError):
        stripped = None
    return Corpus(folder, SAMPLE.read_bytes(), I386.read_bytes(), COMPRESSED.read_bytes(),
                  BZIMAGE.read_bytes(), {p.name: p.read_text() for p in RULES.glob("*.yaml")},
                  traces["pvh"], traces["native"],
                  json.loads((folder / "baseline.json").read_text()), folder / "cache",
                  stripped)


# -- running ------------------------------------------------------------------------------


@dataclass
class Outcome:
    family: str
    index: int
    label: str
    outcome: str
    code: int | None
    seconds: float
    max_rss_mib: float
    line: str


def _child(argv: list[str], work: Path, env: dict[str, str], memory: int) -> None:
    """In the forked child: limits, a clean environment, the CLI as `entrycheck` runs it."""
    code = 1
    try:
        os.setpgid(0, 0)
        os.chdir(env.pop("_CWD", work))
        os.environ.clear()
        os.environ.update(env)
        os.umask(0o022)
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(os.open(work / ".stdout", os.O_WRONLY | os.O_CREAT, 0o600), 1)
        os.dup2(os.open(work / ".stderr", os.O_WRONLY | os.O_CREAT, 0o600), 2)
        sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), encoding="utf-8")
        sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), encoding="utf-8",
                                      errors="backslashreplace", line_buffering=True)
        sys.argv = ["entrycheck", *argv]
        from entrycheck import cli

        try:
            result = cli.main(argv)
            code = result if isinstance(result, int) else 0
        except SystemExit as exc:
            if exc.code is None or isinstance(exc.code, int):
                code = exc.code or 0
            else:
                print(exc.code, file=sys.stderr)
                code = 1
        except BaseException:
            traceback.print_exc()
            code = 1
        try:
            sys.stdout.flush()
        except BaseException:
            traceback.print_exc()
            code = 120
        sys.stderr.flush()
    finally:
        os._exit(code)


def _limits(memory: int) -> Callable[[], None]:
    def apply() -> None:
        os.setpgid(0, 0)
        os.umask(0o022)
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    return apply


def run_case(case: Case, work: Path, runner: str, timeout: float,
             memory: int) -> tuple[int | None, bool, float, float]:
    """(exit code or -signal, timed out, seconds, peak RSS MiB)."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(work / "home"),
           **{k: os.environ[k] for k in ("PYTHONPATH",) if k in os.environ},
           "XDG_CACHE_HOME": str(work / "xdg"), "LANG": "C.UTF-8", **case.env}
    start = time.monotonic()
    sys.stdout.flush()
    sys.stderr.flush()
    if runner == "fork":
        pid = os.fork()
        if pid == 0:
            _child(case.argv, work, dict(env), memory)
    else:
        cwd = env.pop("_CWD", str(work))
        with (work / ".stdout").open("wb") as out, (work / ".stderr").open("wb") as err:
            proc = subprocess.Popen([sys.executable, "-m", "entrycheck.cli",
                                     *map(os.fsencode, case.argv)],
                                    stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env,
                                    cwd=cwd, preexec_fn=_limits(memory))
        pid = proc.pid
    timed_out = False
    while True:
        done, status, usage = os.wait4(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() - start > timeout:
            timed_out = True
            try:
                os.killpg(pid, signal.SIGKILL)
            except OSError:
                os.kill(pid, signal.SIGKILL)
            done, status, usage = os.wait4(pid, 0)
            break
        time.sleep(0.005)
    if runner != "fork":
        proc.returncode = 0  # reaped above
    with contextlib.suppress(OSError):  # whatever the case started (dot, objdump, qemu)
        os.killpg(pid, signal.SIGKILL)
    code = os.waitstatus_to_exitcode(status)
    return code, timed_out, time.monotonic() - start, usage.ru_maxrss / 1024


def classify(case: Case, code: int | None, timed_out: bool, rss: float, stderr: str,
             unsafe: str | None) -> tuple[str, str]:
    """(outcome, the line that shows it)."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    last = lines[-1] if lines else ""
    if timed_out:
        return "hang", ""
    if "MemoryError" in stderr or rss > 1024:
        return "memory", f"peak {rss:.0f} MiB {last[:200]}"
    if "Traceback (most recent call last)" in stderr:
        return "traceback", last[:200]
    if "internal error" in stderr:
        return "internal", last[:200]
    if unsafe:
        return "unsafe", unsafe
    if code == 2:
        before = all(line.startswith("entrycheck: warning: ") and len(line) < 300
                     for line in lines[:-1])
        if before and last.startswith("entrycheck: error: ") and len(last) < 300:
            return "error", last[:200]
        return "bad-line", f"{len(lines)} lines, {len(last)} chars: {last[:160]}"
    if code == 0 or (code == 1 and case.argv and case.argv[0] in FINDINGS_COMMANDS):
        long = [line for line in lines if len(line) >= 300]
        return ("bad-line", f"a {len(long[0])}-char stderr line") if long else ("ok", "")
    return "other", f"exit {code}: {last[:160]}"


def make_case(family: str, index: int, seed: int, work: Path, corpus: Corpus) -> Case:
    rng = random.Random(f"{seed}:{family}:{index}")
    return FAMILIES[family](rng, work, corpus)


def run_one(family: str, index: int, seed: int, corpus: Corpus, scratch: Path, runner: str,
            timeout: float, memory: int, keep: Path | None = None) -> Outcome:
    work = Path(tempfile.mkdtemp(prefix=f"{family}-{index}-", dir=scratch))
    try:
        try:
            case = make_case(family, index, seed, work, corpus)
        except OSError as exc:  # this machine cannot make the input (no mkfifo...)
            return Outcome(family, index, "setup", "ok", None, 0.0, 0.0, f"skipped: {exc}")
        code, timed_out, seconds, rss = run_case(case, work, runner, timeout, memory)
        stderr = (work / ".stderr").read_text(errors="replace")
        unsafe = None
        if case.check is not None:
            try:
                unsafe = case.check(work)
            except OSError as exc:
                unsafe = f"check failed: {exc}"
        outcome, line = classify(case, code, timed_out, rss, stderr, unsafe)
        return Outcome(family, index, case.label, outcome, code, round(seconds, 3),
                       round(rss, 1), line)
    finally:
        if keep is not None:
            shutil.copytree(work, keep / work.name, symlinks=True, dirs_exist_ok=True)
        _remove(work)


def _remove(folder: Path) -> None:
    for p in [folder, *folder.rglob("*")]:
        try:
            if p.is_dir() and not p.is_symlink():
                p.chmod(0o755)
        except OSError:
            pass
    shutil.rmtree(folder, ignore_errors=True)


def plan(families: list[str], cases: int, seed: int) -> list[tuple[str, int]]:
    """`cases` (family, index) pairs, shared out by weight, interleaved."""
    total = sum(WEIGHTS[f] for f in families)
    counts = {f: max(1, round(cases * WEIGHTS[f] / total)) for f in families}
    order = [(f, i) for f in families for i in range(counts[f])]
    random.Random(seed).shuffle(order)
    return order


def table(results: list[Outcome]) -> str:
    fams = list(dict.fromkeys(r.family for r in results))
    counts = {f: Counter(r.outcome for r in results if r.family == f) for f in fams}
    head = f"{'family':<10} {'runs':>5} " + " ".join(f"{c:>9}" for c in CLASSES) + \
        "  s/case"
    rows = [head, "-" * len(head)]
    for f in [*fams, "total"]:
        c = Counter(r.outcome for r in results) if f == "total" else counts[f]
        runs = sum(c.values())
        secs = [r.seconds for r in results if f in ("total", r.family)]
        rows.append(f"{f:<10} {runs:>5} " + " ".join(f"{c.get(k, 0):>9}" for k in CLASSES)
                    + f"  {sum(secs) / max(len(secs), 1):6.2f}")
    return "\n".join(rows)


def campaign(families: list[str], cases: int, seed: int, runner: str = "fork",
             timeout: float = 20.0, memory: int = 4 * GIB, budget: float | None = None,
             progress: bool = False, only: int | None = None,
             keep: Path | None = None) -> tuple[list[Outcome], float]:
    """Run the campaign; (outcomes, seconds). `budget` stops it early (seconds)."""
    scratch = Path(tempfile.mkdtemp(prefix="entrycheck-fuzz-"))
    start = time.monotonic()
    try:
        corpus = make_corpus(scratch / "corpus")
        if runner == "fork":
            _preload()
        todo = [(families[0], only)] if only is not None else plan(families, cases, seed)
        results = []
        for n, (family, index) in enumerate(todo):
            if budget is not None and time.monotonic() - start > budget:
                break
            results.append(run_one(family, index, seed, corpus, scratch, runner, timeout,
                                   memory, keep))
            r = results[-1]
            if progress and r.outcome not in ("ok", "error"):
                print(f"[{n + 1}/{len(todo)}] {r.family} {r.index} {r.label}: {r.outcome} "
                      f"{r.line}", file=sys.stderr)
            elif progress and n % 100 == 0:
                print(f"[{n + 1}/{len(todo)}] {time.monotonic() - start:.0f} s",
                      file=sys.stderr)
        return results, time.monotonic() - start
    finally:
        _remove(scratch)


def _preload() -> None:
    """Import what the commands use, so each forked case starts warm."""
    import entrycheck.check.evaluate
    import entrycheck.check.formats
    import entrycheck.check.rules
    import entrycheck.cli
    import entrycheck.graph
    import entrycheck.report.html
    import entrycheck.splice
    from entrycheck import cache
    from entrycheck.knowledge import x86

    cache.code_digest()
    x86()
    assert entrycheck.check.evaluate and entrycheck.check.formats and entrycheck.check.rules
    assert entrycheck.cli and entrycheck.graph and entrycheck.report.html and entrycheck.splice


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--cases", type=int, default=450, help="cases in all (default 450)")
    parser.add_argument("--family", action="append", choices=list(FAMILIES),
                        help="only these families (repeatable)")
    parser.add_argument("--index", type=int, help="run one case of --family")
    parser.add_argument("--runner", choices=("fork", "exec"), default="fork")
    parser.add_argument("--timeout", type=float, default=20.0, help="seconds per case")
    parser.add_argument("--memory", type=float, default=4.0, help="GiB of address space")
    parser.add_argument("--budget", type=float, help="stop after this many seconds")
    parser.add_argument("--json", type=Path, help="write the summary here")
    parser.add_argument("--keep", type=Path, help="copy each case folder here")
    parser.add_argument("-q", "--quiet", action="store_true")
    args = parser.parse_args(argv)
    families = args.family or list(FAMILIES)
    if args.index is not None and len(families) != 1:
        parser.error("--index needs one --family")
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
    results, seconds = campaign(families, args.cases, args.seed, args.runner, args.timeout,
                                int(args.memory * GIB), args.budget, not args.quiet,
                                args.index, args.keep)
    print(table(results))
    bad = [r for r in results if r.outcome not in ("ok", "error")]
    labels = Counter((r.family, r.label, r.outcome) for r in bad)
    for (family, label, outcome), n in labels.most_common():
        example = next(r for r in bad if (r.family, r.label, r.outcome) ==
                       (family, label, outcome))
        print(f"{n:>5} {outcome:<9} {label:<32} e.g. --family {family} --index "
              f"{example.index}: {example.line[:120]}")
    print(f"{len(results)} cases in {seconds:.0f} s (seed {args.seed}, runner {args.runner}, "
          f"peak RSS {max((r.max_rss_mib for r in results), default=0):.0f} MiB)")
    if args.json:
        summary = {"seed": args.seed, "runner": args.runner, "timeout": args.timeout,
                   "memory_gib": args.memory, "cases": len(results), "seconds": round(seconds),
                   "outcomes": Counter(r.outcome for r in results),
                   "families": {f: Counter(r.outcome for r in results if r.family == f)
                                for f in families},
                   "failures": [r.__dict__ for r in bad]}
        args.json.write_text(json.dumps(summary, indent=1) + "\n")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
