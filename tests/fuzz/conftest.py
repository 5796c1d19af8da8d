"""Helpers of the fuzz regressions (issue 13): the CLI in process or in a child with a
timeout, the one-line error check, and patched copies of the sample kernel."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from entrycheck.cli import main

from ..conftest import ROOT

sys.path.insert(0, str(ROOT / "scripts"))
from fuzzing.binaries import Elf

SAMPLE = ROOT / "sample_vmlinux" / "vmlinux"


def error_line(stderr: str) -> str:
    """The one error line of a failed run (notes and warnings may come before it)."""
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert lines, "no error line"
    assert lines[-1].startswith("entrycheck: error: "), stderr[-2000:]
    assert len(lines[-1]) < 300, lines[-1][:400]
    assert all(line.startswith(("entrycheck: warning: ", "entrycheck: note: "))
               for line in lines[:-1]), stderr[-2000:]
    assert "internal error" not in lines[-1], lines[-1]
    return lines[-1]


@pytest.fixture
def cli(capsys, monkeypatch) -> Callable[..., tuple[int, str, str]]:
    """Run the CLI in this process: (exit code, stdout, stderr); no analysis cache."""
    monkeypatch.setenv("ENTRYCHECK_NO_CACHE", "1")

    def run(*argv: str | Path) -> tuple[int, str, str]:
        try:
            code = main([str(a) for a in argv])
        except SystemExit as exc:  # argparse: usage errors, --help
            code = exc.code
        out = capsys.readouterr()
        return code, out.out, out.err
    return run


@pytest.fixture
def fails(cli) -> Callable[..., str]:
    """Run the CLI in process and return its one error line (exit 2 asserted)."""
    def run(*argv: str | Path) -> str:
        code, _, err = cli(*argv)
        assert code == 2, err
        return error_line(err)
    return run


def run_child(*argv: str | Path, timeout: float = 60, cwd: Path | None = None,
              env: dict | None = None) -> subprocess.CompletedProcess:
    """The CLI in a child process (for inputs that could hang: FIFOs, devices)."""
    return subprocess.run([sys.executable, "-m", "entrycheck.cli", *map(str, argv)],
                          capture_output=True, text=True, timeout=timeout, cwd=cwd,
                          env={**os.environ, **(env or {})})


def child_fails(*argv: str | Path, **kw) -> str:
    proc = run_child(*argv, **kw)
    assert proc.returncode == 2, proc.stderr
    return error_line(proc.stderr)


def patched(tmp_path: Path, patch: Callable[[Elf, bytearray], None],
            source: Path = SAMPLE, name: str = "vmlinux") -> Path:
    """A copy of a sample kernel after patch(elf, bytes)."""
    data = bytearray(source.read_bytes())
    patch(Elf(bytes(data)), data)
    out = tmp_path / name
    out.write_bytes(bytes(data))
    return out


def set_note(elf: Elf, data: bytearray, ntype: int, value: int) -> None:
    """Overwrite the descriptor of the Xen note of type `ntype`."""
    for pos, t, owner in elf.notes():
        if owner == "Xen" and t == ntype:
            namesz, descsz = struct.unpack_from("<II", data, pos)
            desc = pos + 12 + (namesz + 3 & ~3)
            data[desc : desc + descsz] = value.to_bytes(descsz, "little")
            return
    raise AssertionError(f"no Xen note {ntype}")


def set_symbol(elf: Elf, data: bytearray, name: str, value: int) -> None:
    pos = elf.symbol_offset(name)
    assert pos is not None, name
    struct.pack_into("<Q", data, pos + 8, value)
