"""Tests of entrycheck.binary.dwarf: inlined helpers and declaration sites from DWARF."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from entrycheck.binary import dwarf
from entrycheck.binary.dwarf import DwarfIndex, Inlined, SourceLocation
from entrycheck.binary.image import Image
from entrycheck.errors import EntrycheckError

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "sample_vmlinux"
VMLINUX = SAMPLE / "vmlinux"
EXPECTED = json.loads((SAMPLE / "expected.json").read_text())
REAL_ABI = "6.1.0-56-cloud-amd64"


def _line_of(path: Path, text: str) -> int:
    """1-based number of the first line of path containing text."""
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if text in line:
            return number
    raise AssertionError(f"{text!r} not in {path}")


@pytest.fixture(scope="module")
def sample_image() -> Image:
    return Image(VMLINUX)


def _function_range(image: Image, name: str) -> tuple[int, int]:
    (sym,) = image.symbols_by_name[name]
    return sym.value, sym.value + sym.size


def _check_sample(index: DwarfIndex, image: Image) -> None:
    start, end = _function_range(image, "x86_64_start_kernel")
    inl = index.inlined_in({"x86_64_start_kernel": start})
    assert [i.name for i in inl["x86_64_start_kernel"]] == EXPECTED["inlined"][
        "x86_64_start_kernel"
    ]
    (only,) = inl["x86_64_start_kernel"]
    assert only.name == "cr4_init_shadow"
    assert only.call_file == "head64.c"
    assert only.call_line == _line_of(SAMPLE / "head64.c", "\tcr4_init_shadow();")
    assert only.low_pc is not None and start <= only.low_pc < end
    locs = index.locations(
        {"x86_64_start_kernel": start, "setup_arch": image.symbol_address("setup_arch")}
    )
    assert locs == {
        "x86_64_start_kernel": SourceLocation(
            "head64.c", _line_of(SAMPLE / "head64.c", "void x86_64_start_kernel(")
        ),
        "setup_arch": SourceLocation(
            "main.c", _line_of(SAMPLE / "main.c", "void setup_arch(void)")
        ),
    }


def test_sample_has_aranges(sample_image: Image) -> None:
    assert sample_image.section(".debug_aranges") is not None
    index = DwarfIndex(VMLINUX)
    assert index.available
    _check_sample(index, sample_image)
    assert index._aranges is not None and index._aranges[1]  # answered from .debug_aranges
    assert index._cu_scan is None  # ... without the CU-header scan


def test_sample_fallback_without_aranges_in_memory(sample_image: Image) -> None:
    index = DwarfIndex(VMLINUX)
    index._aranges = ([], [])  # as if .debug_aranges were empty
    _check_sample(index, sample_image)
    assert index._cu_scan is not None and index._cu_scan[1]


def test_sample_fallback_through_pyelftools(
    sample_image: Image, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast = DwarfIndex(VMLINUX)
    fast._aranges = ([], [])
    fast.locations({"x": 0})  # byte-level top-DIE reader
    monkeypatch.setattr(dwarf, "_top_die_pcs", lambda *args: None)  # as for unhandled forms
    index = DwarfIndex(VMLINUX)
    index._aranges = ([], [])
    _check_sample(index, sample_image)
    assert index._cu_scan == fast._cu_scan


def test_sample_fallback_without_aranges_section(sample_image: Image, tmp_path: Path) -> None:
    objcopy = shutil.which("objcopy")
    if objcopy is None:
        pytest.skip("objcopy not installed")
    copy = tmp_path / "vmlinux"
    subprocess.run(
        [objcopy, "--remove-section=.debug_aranges", "--remove-section=.rela.debug_aranges",
         str(VMLINUX), str(copy)],
        check=True,
    )  # fmt: skip
    index = DwarfIndex(copy)
    _check_sample(index, sample_image)
    assert index._aranges == ([], [])
    assert index._cu_scan is not None and index._cu_scan[1]


def test_nested_inlines_walked_and_unknowns_left_out(sample_image: Image) -> None:
    index = DwarfIndex(VMLINUX)
    addrs = {
        "start_kernel": sample_image.symbol_address("start_kernel"),
        "startup_64": sample_image.symbol_address("startup_64"),  # assembly: no subprogram DIE
        "nowhere": 0x1234,
    }
    inl = index.inlined_in(addrs)
    assert inl == {"start_kernel": []}
    assert set(index.locations(addrs)) == {"start_kernel"}


def test_not_available_without_g(tmp_path: Path) -> None:
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("gcc not installed")
    src = tmp_path / "nodebug.c"
    src.write_text("static int x;\nvoid _start(void)\n{ for (;;) x++; }\n")
    out = tmp_path / "nodebug"
    subprocess.run([gcc, "-O2", "-nostdlib", "-static", "-o", str(out), str(src)], check=True)
    index = DwarfIndex(out)
    assert not index.available
    assert index._dwarf is None
    with pytest.raises(EntrycheckError, match="no DWARF"):
        index.inlined_in({"_start": 0})


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(EntrycheckError, match="cannot open"):
        _ = DwarfIndex(tmp_path / "absent").available


def _real_kernel() -> dict[str, Path]:
    if os.environ.get("ENTRYCHECK_REAL_KERNEL") != "1" and os.environ.get("CI") != "true":
        pytest.skip("set ENTRYCHECK_REAL_KERNEL=1 to run on Debian's vmlinux")
    spec = importlib.util.spec_from_file_location("fetch_kernel", ROOT / "scripts/fetch_kernel.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.fetch(REAL_ABI, "dbg")


@pytest.mark.realkernel
def test_real_kernel_x86_64_start_kernel() -> None:
    paths = _real_kernel()
    addr = Image(paths["vmlinux_nodebug"]).symbol_address("x86_64_start_kernel")
    assert addr is not None
    index = DwarfIndex(paths["vmlinux"])
    assert index.available
    assert not DwarfIndex(paths["vmlinux_nodebug"]).available
    inl = index.inlined_in({"x86_64_start_kernel": addr})["x86_64_start_kernel"]
    build = "debian/build/build_amd64_none_cloud-amd64/"
    # As readelf --debug-dump=info --dwarf-start=0xeb1b shows (DWARF 5, gcc 12).
    assert [(i.name, i.call_file, i.call_line) for i in inl] == [
        ("cr4_init_shadow", build + "arch/x86/kernel/head64.c", 489),
        ("__read_cr4", build + "arch/x86/include/asm/tlbflush.h", 166),
        ("native_read_cr4", build + "arch/x86/include/asm/special_insns.h", 136),
        ("clear_page", build + "arch/x86/kernel/head64.c", 500),
        ("__native_tlb_flush_global", build + "arch/x86/kernel/head64.c", 519),
    ]
    assert all(isinstance(i, Inlined) and i.low_pc is not None for i in inl)
    assert inl[0].low_pc == addr + 0x1B
    assert index.locations({"x86_64_start_kernel": addr}) == {
        "x86_64_start_kernel": SourceLocation(build + "arch/x86/kernel/head64.c", 473)
    }
