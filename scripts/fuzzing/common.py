"""What the fuzz families share: the case and corpus types, the sample inputs, small
mutation helpers, and the corpus of valid inputs made once per campaign."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "sample_vmlinux" / "vmlinux"
COMPRESSED = ROOT / "sample_vmlinux" / "compressed" / "vmlinux"
BZIMAGE = ROOT / "sample_vmlinux" / "compressed" / "bzImage"
I386 = ROOT / "sample_vmlinux" / "i386" / "vmlinux"
RULES = ROOT / "rules"
INTERESTING = (0, 1, 2, 7, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0x8000, 0xFFFF, 0x10000,
               0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 1 << 32, 1 << 40, 1 << 62, 1 << 63,
               (1 << 64) - 1)


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
