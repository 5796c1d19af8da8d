"""Issue 6 across images: a build tree's bzImage header, compressed kernel and vmlinux,
followed from the firmware entries into start_kernel (on the sample's compressed model)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from entrycheck.cli import main

from .conftest import ROOT

COMPRESSED = ROOT / "sample_vmlinux" / "compressed"


@pytest.fixture(scope="module")
def build_dir(tmp_path_factory):
    """The layout of a kernel build tree, made of the sample's files."""
    top = tmp_path_factory.mktemp("build")
    boot = top / "arch" / "x86" / "boot"
    (boot / "compressed").mkdir(parents=True)
    (top / "vmlinux").symlink_to(ROOT / "sample_vmlinux" / "vmlinux")
    (boot / "compressed" / "vmlinux").symlink_to(COMPRESSED / "vmlinux")
    (boot / "bzImage").symlink_to(COMPRESSED / "bzImage")
    return top


def run(capsys, *argv: str) -> dict:
    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_entries_from_header_and_symbols(capsys, build_dir):
    expected = json.loads((COMPRESSED / "expected.json").read_text())
    got = {e["name"]: e for e in run(capsys, "entries", "--build-dir", str(build_dir))["entries"]}
    assert {"native", "xen-pv", "pvh"} <= set(got)
    for name in ("efi-pe", "efi-pe-32", "efi-handover-64", "efi-handover-32",
                 "decompressor-32", "decompressor-64"):
        assert got[name]["found"] == ["symbol", "header"], name
        assert "warning" not in got[name]
    header = expected["header"]
    assert int(got["efi-handover-32"]["address"], 16) == int(header["handover_offset"], 16)
    assert int(got["efi-handover-64"]["address"], 16) == int(header["handover_offset"], 16) + 0x200
    assert got["efi-handover-32"]["mode"] == 32 and got["decompressor-32"]["mode"] == 32


@pytest.mark.parametrize("entry", ["efi-pe", "efi-handover-64", "decompressor-64"])
def test_why_follows_firmware_entry_into_start_kernel(capsys, build_dir, entry):
    out = run(capsys, "why", "--build-dir", str(build_dir), "--entry", entry, "start_kernel")
    kinds = [link["edge"]["kind"] for link in out["links"][1:]]
    assert out["chain"][-1] == "start_kernel" and "handoff" in kinds
    after = out["chain"][kinds.index("handoff") + 1]
    assert after == "startup_64"  # the vmlinux's native entry


def test_efi_handover_vs_legacy_decompressor(capsys, build_dir):
    out = run(capsys, "skip", "--build-dir", str(build_dir), "--entry", "efi-handover-64",
              "--against", "decompressor-64", "--scope", "all")
    assert out["convergence"] == ["startup_64"]
    own = {f["name"] for f in out["entry_only"]}
    assert {"efi64_stub_entry", "efi_stub_entry"} <= own


def test_bzimage_as_image(capsys):
    got = run(capsys, "entries", str(COMPRESSED / "bzImage"))
    assert {e["name"] for e in got["entries"]} >= {"efi-pe", "efi-handover-64", "decompressor-32"}
    assert all(e["found"] == ["header"] for e in got["entries"])
    proc = subprocess.run([sys.executable, "-m", "entrycheck.cli", "skip",
                           str(COMPRESSED / "bzImage"), "--entry", "efi-pe"],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "is a bzImage" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_missing_compressed_stage(tmp_path):
    (tmp_path / "vmlinux").symlink_to(ROOT / "sample_vmlinux" / "vmlinux")
    proc = subprocess.run([sys.executable, "-m", "entrycheck.cli", "entries", "--build-dir",
                           str(tmp_path)], capture_output=True, text=True)
    assert proc.returncode == 2 and "compressed/vmlinux: missing" in proc.stderr


@pytest.mark.realkernel
def test_debian_vmlinuz_header_entries(capsys, debian61):
    got = run(capsys, "entries", str(debian61["vmlinuz"]))
    names = {e["name"] for e in got["entries"]}
    assert {"efi-pe", "efi-handover-64", "efi-handover-32", "decompressor-64"} <= names
    assert got["header"]["version"] == "0x20f"


def test_files_named_one_by_one(capsys):
    got = run(capsys, "why", str(ROOT / "sample_vmlinux" / "vmlinux"), "--compressed",
              str(COMPRESSED / "vmlinux"), "--bzimage", str(COMPRESSED / "bzImage"),
              "--entry", "efi-handover-64", "start_kernel")
    assert got["chain"][0] == "efi64_stub_entry" and got["chain"][-1] == "start_kernel"
