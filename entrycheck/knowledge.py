"""Kernel knowledge tables (entry catalogue, noreturn functions, init code): loaded from data."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from importlib import resources

import yaml


@dataclass(frozen=True)
class EntrySpec:
    """One catalogued boot entry."""

    name: str
    symbols: tuple[str, ...]
    mode: int
    image: str = "vmlinux"
    bits: int | None = None
    note: str | None = None
    header: str | None = None
    about: str = ""


@dataclass(frozen=True)
class Knowledge:
    """What entrycheck knows about x86 kernels, independent of any one image."""

    entries: tuple[EntrySpec, ...]
    reference: str
    compressed_markers: frozenset[str]
    head_symbols: tuple[str, ...]
    init_sections: frozenset[str]
    noreturn: frozenset[str]
    boot_ends: frozenset[str]
    error_exits: frozenset[str]
    installs: dict[str, tuple[str, ...]]
    compressed_base_registers: frozenset[str]
    static_call_updates: dict[str, tuple[str, str]]
    handoff_in: frozenset[str]
    handoff_after_call: frozenset[str]
    digest: str  # of the data file, so caches follow changes to it


@cache
def x86() -> Knowledge:
    """The x86 tables shipped in entrycheck/data/x86.yaml."""
    text = resources.files("entrycheck").joinpath("data/x86.yaml").read_text()
    data = yaml.safe_load(text)
    return Knowledge(
        entries=tuple(
            EntrySpec(e["name"], tuple(e["symbols"]), e["mode"], e.get("image", "vmlinux"),
                      e.get("bits"), e.get("note"), e.get("header"), e.get("about", ""))
            for e in data["entries"]
        ),
        reference=data["reference"],
        compressed_markers=frozenset(data["compressed_markers"]),
        head_symbols=tuple(data["head_symbols"]),
        init_sections=frozenset(data["init_sections"]),
        noreturn=frozenset(data["noreturn"]),
        boot_ends=frozenset(data["boot_ends"]),
        error_exits=frozenset(data["error_exits"]),
        installs={k: tuple(v) for k, v in data.get("installs", {}).items()},
        compressed_base_registers=frozenset(data["compressed_base_registers"]),
        static_call_updates={k: tuple(v) for k, v in data["static_call_updates"].items()},
        handoff_in=frozenset(data["kernel_handoff"]["in"]),
        handoff_after_call=frozenset(data["kernel_handoff"]["after_call"]),
        digest=hashlib.sha256(text.encode()).hexdigest()[:16],
    )
