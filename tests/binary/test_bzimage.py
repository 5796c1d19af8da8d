"""bzimage: setup and PE/COFF headers of the sample bzImage and of Debian's vmlinuz."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from entrycheck.binary import bzimage
from entrycheck.binary.image import Image
from entrycheck.errors import EntrycheckError

from ..conftest import ROOT, SAMPLE

COMPRESSED = ROOT / "sample_vmlinux" / "compressed"
BZIMAGE = COMPRESSED / "bzImage"
ZVMLINUX = COMPRESSED / "vmlinux"


@pytest.fixture(scope="module")
def known() -> dict:
    return json.loads((COMPRESSED / "expected.json").read_text())


@pytest.fixture(scope="module")
def sample_bz() -> bzimage.BzImage:
    return bzimage.parse(BZIMAGE)


def _nm(path) -> dict[str, int]:
    out = subprocess.run(["nm", str(path)], capture_output=True, text=True, check=True).stdout
    return {parts[2]: int(parts[0], 16) for line in out.splitlines()
            if len(parts := line.split()) == 3}


def test_sample_header_fields(sample_bz, known):
    got = sample_bz.as_json()
    for name, value in known["header"].items():
        assert got[name] == value, name
    assert sample_bz.xloadflag_names == known["xloadflag_names"]
    assert sample_bz.warnings == ()


def test_sample_pe_header(sample_bz, known):
    pe = sample_bz.pe
    assert pe is not None and pe.offset == 0x40 and pe.machine == bzimage.IMAGE_FILE_MACHINE_AMD64
    assert [s.as_json() for s in pe.sections] == known["pe_sections"]
    assert sample_bz.efi_pe_entry_rva == int(known["efi_pe_entry_rva"], 16)
    assert sample_bz.compat_entry_rva == int(known["compat_entry_rva"], 16)


def test_sample_derived_entries(sample_bz, known):
    assert sample_bz.protected_mode_offset == (sample_bz.setup_sects + 1) * 512 == 0x3000
    assert sample_bz.handover_64 == sample_bz.handover_offset + 0x200
    assert sample_bz.handover_32 == sample_bz.handover_offset
    entries = {k: v["address"] for k, v in sample_bz.as_json()["entries"].items()}
    assert entries == {k: v["address"] for k, v in known["entries"].items()}


def test_map_entries_names_sample_symbols(sample_bz, known):
    mapped = bzimage.map_entries(sample_bz, Image(ZVMLINUX))
    assert {k: (f"{a:#x}", s) for k, (a, s) in mapped.items()} == {
        k: (v["address"], v["symbol"]) for k, v in known["entries"].items()}
    assert bzimage.same_build(sample_bz, Image(ZVMLINUX))


@pytest.mark.skipif(shutil.which("nm") is None, reason="needs nm (binutils)")
def test_map_entries_agrees_with_nm(sample_bz):
    nm = _nm(ZVMLINUX)
    for name, (addr, symbol) in bzimage.map_entries(sample_bz, Image(ZVMLINUX)).items():
        assert symbol is not None, name
        assert nm[symbol] == addr, name


def test_entry_code_decodes(sample_bz):
    first = {name: bzimage.decode_at(sample_bz, addr, mode, 1)[0][1]
             for name, (addr, mode) in sample_bz.entry_addresses().items()}
    assert first["decompressor-32"] == "cld"
    assert first["decompressor-64"] == "cld"
    assert first["efi-handover-64"].startswith("jmp ")
    assert first["efi-handover-32"].startswith("call ")
    assert first["efi-pe-32"] == "push ebp"


def test_symbol_at_missing_is_none():
    assert bzimage.symbol_at(Image(ZVMLINUX), 0x201) is None


@pytest.mark.parametrize("make, message", [
    (lambda tmp: SAMPLE, "no HdrS magic at 0x202 (an ELF file"),
    (lambda tmp: _write(tmp, b"just some text\n" * 100), "no HdrS magic"),
    (lambda tmp: _write(tmp, b"short"), "too short for a setup header"),
    (lambda tmp: _write(tmp, BZIMAGE.read_bytes()[:0x240]), "setup header cut at 0x240"),
    (lambda tmp: _write(tmp, BZIMAGE.read_bytes()[:0x2000]), "protected-mode code starts"),
    (lambda tmp: _write(tmp, _patched(0x1FE, b"\0\0")), "boot_flag is 0x0000"),
    (lambda tmp: _write(tmp, _patched(0x40, b"XX")), "no PE signature"),
    (lambda tmp: tmp / "missing", "cannot open"),
])
def test_not_a_bzimage(tmp_path, make, message):
    with pytest.raises(EntrycheckError) as info:
        bzimage.parse(make(tmp_path))
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def _write(tmp, data: bytes):
    path = tmp / "image"
    path.write_bytes(data)
    return path


def _patched(offset: int, data: bytes) -> bytes:
    raw = bytearray(BZIMAGE.read_bytes())
    raw[offset : offset + len(data)] = data
    return bytes(raw)


@pytest.mark.realkernel
def test_debian_vmlinuz(debian61):
    bz = bzimage.parse(debian61["vmlinuz"])
    assert bz.version >= 0x020F
    assert bz.xlf(bzimage.XLF_KERNEL_64) and bz.xlf(bzimage.XLF_EFI_HANDOVER_64)
    assert bz.pe is not None and bz.efi_pe_entry_rva
    assert bz.warnings == ()
    text = bz.pe.section(".text")
    assert text.virtual_address == text.raw_offset == bz.setup_size  # RVA = setup size + addr
    first = {name: bzimage.decode_at(bz, addr, mode, 1)[0][1]
             for name, (addr, mode) in bz.entry_addresses().items()}
    assert first["decompressor-32"] == first["decompressor-64"] == "cld"
    assert first["efi-handover-64"].startswith("jmp ")


@pytest.mark.skipif(not all(shutil.which(t) for t in ("gcc", "ld", "make", "nm")),
                    reason="needs gcc, ld, make and nm")
def test_rebuild_gives_known_answers(tmp_path, known):
    src = tmp_path / "compressed"
    shutil.copytree(COMPRESSED, src, ignore=shutil.ignore_patterns("vmlinux", "bzImage", "build"))
    subprocess.run(["make", "-s", "-C", str(src)], check=True, capture_output=True)
    bz = bzimage.parse(src / "bzImage")
    mapped = bzimage.map_entries(bz, Image(src / "vmlinux"))
    assert {k: (f"{a:#x}", s) for k, (a, s) in mapped.items()} == {
        k: (v["address"], v["symbol"]) for k, v in known["entries"].items()}
