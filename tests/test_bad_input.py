"""Bad input: one clear error line on stderr, exit code 2, no traceback, nothing overwritten."""

from __future__ import annotations

import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest


def run(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "entrycheck.cli", *argv],
                          capture_output=True, text=True, timeout=120)


def assert_one_error(proc: subprocess.CompletedProcess, fragment: str) -> None:
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("entrycheck: error: ") and fragment in lines[0]
    assert "Traceback" not in proc.stderr and proc.stdout == ""


def test_not_an_elf(tmp_path):
    bad = tmp_path / "notes.txt"
    bad.write_text("hello, I am not a kernel\n")
    assert_one_error(run("entries", str(bad)), "not an ELF file")
    assert bad.read_text() == "hello, I am not a kernel\n"


def test_empty_file(tmp_path):
    bad = tmp_path / "empty"
    bad.write_bytes(b"")
    assert_one_error(run("entries", str(bad)), "empty file")


def test_missing_file(tmp_path):
    assert_one_error(run("entries", str(tmp_path / "nope")), "cannot open")


def test_truncated(tmp_path, sample):
    cut = tmp_path / "vmlinux.cut"
    cut.write_bytes(sample.read_bytes()[:6000])
    assert_one_error(run("entries", str(cut)), "truncated")


def test_wrong_architecture(tmp_path, sample):
    data = bytearray(sample.read_bytes())
    struct.pack_into("<H", data, 18, 183)  # e_machine = EM_AARCH64
    arm = tmp_path / "vmlinux.arm64"
    arm.write_bytes(bytes(data))
    assert_one_error(run("entries", str(arm)), "not an x86 kernel")


@pytest.mark.skipif(shutil.which("objcopy") is None, reason="needs binutils' objcopy")
def test_stripped(tmp_path, sample):
    stripped = tmp_path / "vmlinux.stripped"
    subprocess.run(["objcopy", "--strip-all", str(sample), str(stripped)], check=True)
    assert_one_error(run("entries", str(stripped)), "stripped")


def test_unknown_entry(sample):
    assert_one_error(run("skip", str(sample), "--entry", "nosuch"), "no entry 'nosuch'")


def test_unknown_function(sample):
    assert_one_error(run("why", str(sample), "--entry", "native", "no_such_fn"), "no function")




def test_bad_user_entry(sample):
    assert_one_error(run("reach", str(sample), "--entry", "x=no_such_symbol"), "no code symbol")
    assert_one_error(run("reach", str(sample), "--entry", "x=y@16"), "bad --entry")


def test_directory_given(tmp_path):
    proc = run("entries", str(tmp_path))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


def test_sample_untouched(sample):
    before = sample.read_bytes()
    run("skip", str(sample), "--entry", "xen-pv")
    assert Path(sample).read_bytes() == before
