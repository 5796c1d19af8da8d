"""Boot tracing: in_asm log parsing and mapping (pure), and real QEMU boots (realkernel)."""

from __future__ import annotations

import bisect
import importlib.util
import os
from pathlib import Path

import pytest

from entrycheck.binary.functions import Function
from entrycheck.errors import EntrycheckError
from entrycheck.trace import qemu
from entrycheck.trace.files import read_trace, write_trace
from entrycheck.trace.mapping import (
    TraceResult,
    map_to_functions,
    parse_in_asm_blocks,
    parse_in_asm_log,
)

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"

# PT_LOAD headers of Debian's 6.1.0-56-cloud-amd64 vmlinux: (vaddr, paddr, memsz).
DEBIAN61_SEGMENTS = [
    (0xFFFFFFFF81000000, 0x1000000, 0x1826634),
    (0xFFFFFFFF82A00000, 0x2A00000, 0x61A000),
    (0x0, 0x301A000, 0x34000),
    (0xFFFFFFFF8304E000, 0x304E000, 0xDB2000),
]
PVH_START_XEN = 0xFFFFFFFF81000850

# What the excerpt (QEMU 7.2 TCG, PVH boot of the vmlinux, from the end of the pvh.bin
# option ROM to just before early_setup_idt) ran, in first-execution order.
EXPECTED_PVH = [
    "pvh_start_xen",
    "xen_prepare_pvh",
    "__fentry__",
    "__x86_return_thunk",
    "native_cpuid",
    "memcmp",
    "startup_64",
    "startup_64_setup_env",
    "set_bringup_idt_handler.constprop.0",
    "sme_enable",
    "snp_init",
    "verify_cpu",
    "__startup_64",
    "sme_encrypt_kernel",
    "secondary_startup_64_no_verify",
    "sev_verify_cbit",
]


class StubImage:
    """The phys_to_virt / is_code part of an Image, from fixed PT_LOAD headers."""

    def __init__(self, segments, code=((0xFFFFFFFF81000000, 0xFFFFFFFF83E00000),)):
        self.segments, self.code = segments, code

    def phys_to_virt(self, paddr: int) -> int | None:
        for vaddr, seg_paddr, memsz in self.segments:
            if seg_paddr <= paddr < seg_paddr + memsz and vaddr != seg_paddr:
                return paddr - seg_paddr + vaddr
        return None

    def is_code(self, addr: int) -> bool:
        return any(lo <= addr < hi for lo, hi in self.code)


class StubFunctions:
    """A FunctionTable stand-in built from System.map lines: each text symbol runs to the next."""

    def __init__(self, lines):
        syms = sorted(
            (int(addr, 16), name)
            for addr, kind, name in (ln.split() for ln in lines if ln.strip())
            if kind in "Tt"
        )
        self.starts = [a for a, _ in syms]
        self.funcs = [
            Function(name, addr, syms[i + 1][0] if i + 1 < len(syms) else addr + 1, ".text")
            for i, (addr, name) in enumerate(syms)
        ]

    def at(self, addr: int) -> Function | None:
        i = bisect.bisect_right(self.starts, addr) - 1
        return self.funcs[i] if i >= 0 and addr < self.funcs[i].end else None

    def named(self, name: str) -> Function | None:
        return next((f for f in self.funcs if f.name == name), None)


@pytest.fixture(scope="module")
def excerpt() -> list[str]:
    return (DATA / "in_asm_excerpt.log").read_text().splitlines()


@pytest.fixture(scope="module")
def stub_functions() -> StubFunctions:
    return StubFunctions((DATA / "System.map.excerpt").read_text().splitlines())


def test_parse_excerpt(excerpt):
    starts = parse_in_asm_log(excerpt)
    blocks = parse_in_asm_blocks(excerpt)
    assert len(starts) == len(blocks) == 124
    assert starts == [b[0] for b in blocks]
    assert starts[0] == 0xCA423  # pvh.bin option ROM, 32-bit
    assert PVH_START_XEN - 0xFFFFFFFF80000000 in starts  # pvh_start_xen, at its physical address
    assert 0xFFFFFFFF8305A1FF in starts  # xen_prepare_pvh, logged as "IN: xen_prepare_pvh"
    assert blocks[0] == [0xCA423, 0xCA427, 0xCA42C, 0xCA42E]


def test_map_excerpt_order(excerpt, stub_functions):
    blocks = parse_in_asm_blocks(excerpt)
    result = map_to_functions(
        blocks, StubImage(DEBIAN61_SEGMENTS), stub_functions, entry=PVH_START_XEN
    )
    assert result.functions == EXPECTED_PVH
    assert result.blocks == 124
    assert result.unmapped_blocks == 6  # the option ROM's blocks before the entry
    assert result.unnamed_blocks == 0
    assert result.first_index["pvh_start_xen"] == 6
    assert result.addresses["startup_64"] == 0xFFFFFFFF81000000
    assert "startup_64" in result.physical and "pvh_start_xen" in result.physical
    assert "xen_prepare_pvh" not in result.physical
    assert not result.reached_until and not result.reached_start_kernel


def test_map_block_starts_only(excerpt, stub_functions):
    """Block starts alone give the same order here (no block falls through a symbol)."""
    result = map_to_functions(
        parse_in_asm_log(excerpt), StubImage(DEBIAN61_SEGMENTS), stub_functions,
        entry=PVH_START_XEN,
    )  # fmt: skip
    assert result.functions == EXPECTED_PVH


def test_map_until_stops(excerpt, stub_functions):
    result = map_to_functions(
        parse_in_asm_blocks(excerpt), StubImage(DEBIAN61_SEGMENTS), stub_functions,
        entry=PVH_START_XEN, until="startup_64",
    )  # fmt: skip
    assert result.reached_until
    assert result.functions == EXPECTED_PVH[: EXPECTED_PVH.index("startup_64") + 1]
    with pytest.raises(EntrycheckError, match="no function named"):
        map_to_functions([], StubImage([]), stub_functions, until="no_such_function")


def test_map_gates_on_entry_and_falls_through():
    """Blocks before the entry are not credited even inside vmlinux; a block running off
    the end of one symbol into the next credits both; unnamed vmlinux code is counted."""
    funcs = StubFunctions(["1000 T a", "1010 T b", "1020 T entry", "1030 T end"])
    image = StubImage([], code=((0x1000, 0x2000),))
    blocks = [[0x10], [0x1010], [0x1020, 0x1022], [0x100C, 0x100E, 0x1010], [0x1800], [0x1010]]
    result = map_to_functions(blocks, image, funcs, entry=0x1020)
    assert result.functions == ["entry", "a", "b"]
    assert result.first_index == {"entry": 2, "a": 3, "b": 3}
    assert (result.blocks, result.unmapped_blocks, result.unnamed_blocks) == (6, 3, 1)


def test_trace_json_roundtrip(tmp_path):
    result = TraceResult(
        functions=["startup_64", "start_kernel"],
        addresses={"startup_64": 0xFFFFFFFF81000000, "start_kernel": 0xFFFFFFFF8304EE41},
        first_index={"startup_64": 3, "start_kernel": 9},
        physical={"startup_64"},
        blocks=10, unmapped_blocks=3, reached_until=True, until="start_kernel",
        entry="native", kernel="/k/vmlinuz", build_id="ab12", seconds=0.5, log_bytes=99,
        command=["qemu-system-x86_64", "-kernel", "/k/vmlinuz"],
    )  # fmt: skip
    path = tmp_path / "trace.json"
    write_trace(result, path)
    assert '"format": "entrycheck-trace/1"' in path.read_text()
    assert '"address": "0xffffffff81000000"' in path.read_text()
    back = read_trace(path)
    assert back == result
    assert back.reached_start_kernel and back.order("start_kernel") == 1


def test_read_trace_rejects_other_files(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "something-else"}')
    with pytest.raises(EntrycheckError, match="not an entrycheck-trace/1"):
        read_trace(bad)
    bad.write_text("{")
    with pytest.raises(EntrycheckError, match="not valid JSON"):
        read_trace(bad)
    with pytest.raises(EntrycheckError, match="cannot read"):
        read_trace(tmp_path / "missing.json")


def test_run_boot_refusals(tmp_path, monkeypatch, sample):
    from entrycheck.binary.image import Image

    image = Image(sample)
    kernel = tmp_path / "vmlinuz"
    with pytest.raises(EntrycheckError, match="Xen PV needs a Xen hypervisor"):
        qemu.run_boot("xen-pv", kernel, image)
    with pytest.raises(EntrycheckError, match="cannot be traced"):
        qemu.run_boot("efi", kernel, image)
    monkeypatch.setattr(qemu.shutil, "which", lambda name: f"/usr/bin/{name}")
    with pytest.raises(EntrycheckError, match="no such kernel file"):
        qemu.run_boot("native", kernel, image)
    with pytest.raises(EntrycheckError, match="native boots need the bzImage"):
        qemu.run_boot("native", sample, image)
    monkeypatch.setattr(qemu.shutil, "which", lambda name: None)
    with pytest.raises(EntrycheckError, match="install Debian's qemu-system-x86"):
        qemu.run_boot("pvh", sample, image)


# -- real QEMU boots of Debian's 6.1 kernel ----------------------------------------------

REAL = os.environ.get("ENTRYCHECK_REAL_KERNEL") == "1" or os.environ.get("CI") == "true"


@pytest.fixture(scope="module")
def debian_kernel() -> dict[str, Path]:
    spec = importlib.util.spec_from_file_location("fetch_kernel", ROOT / "scripts/fetch_kernel.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    abi = os.environ.get("ENTRYCHECK_KERNEL_ABI") or module.resolve_abi("cloud-amd64")
    return module.fetch(abi, ["dbg", "image"], Path.home() / ".cache" / "entrycheck")


@pytest.mark.realkernel
@pytest.mark.skipif(not REAL, reason="set ENTRYCHECK_REAL_KERNEL=1")
@pytest.mark.parametrize("entry", ["native", "pvh"])
def test_real_boot_reaches_start_kernel(debian_kernel, entry):
    from entrycheck.binary.image import Image

    image = Image(debian_kernel["vmlinux_nodebug"])
    kernel = debian_kernel["vmlinuz"] if entry == "native" else debian_kernel["vmlinux_nodebug"]
    result = qemu.run_boot(entry, kernel, image, timeout=180)
    assert result.reached_until and result.reached_start_kernel
    assert result.functions[-1] == "start_kernel"
    order = result.order
    assert order("startup_64") < order("x86_64_start_kernel") < order("start_kernel")
    assert order("early_idt_handler_common") is not None  # the early #PF of copy_bootdata
    if entry == "pvh":
        assert result.functions[:2] == ["pvh_start_xen", "xen_prepare_pvh"]
        assert order("xen_prepare_pvh") < order("startup_64")
    else:
        assert result.functions[0] == "startup_64"
        assert order("xen_prepare_pvh") is None
