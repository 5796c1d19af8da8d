"""Baselines and output files: bad baselines are one line and exit 2; --write-baseline is a
set-up step (exit 0); written files end with a newline and keep an existing file's mode."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from entrycheck.cli import main


def cli(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "entrycheck.cli", *argv], capture_output=True,
                          text=True, timeout=60)


@pytest.mark.parametrize(("content", "fragment"), [
    ("[]", "not an entrycheck-baseline/2 file"),
    ("[" * 100_000, "nests deeper than 64 levels"),
    ('{"format": "entrycheck-baseline/1", "findings": {}}', "`findings` must be a list"),
    ('{"format": "entrycheck-baseline/1", "findings": [1]}', "finding 0 has no fingerprint"),
    ('{"format": "entrycheck-baseline/1", "findings": [{"fingerprint": 3}]}', "finding 0"),
    ('{"format": "entrycheck-baseline/1"', "not valid JSON"),
    (b"\xff\xfe", "not UTF-8"),
    ('"just a string"', "not an entrycheck-baseline/2 file"),
])
def test_bad_baselines(tmp_path, sample, content, fragment):
    path = tmp_path / "baseline.json"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    proc = cli("check", str(sample), "--baseline", str(path))
    assert proc.returncode == 2, proc.stderr
    [line] = proc.stderr.splitlines()
    assert line.startswith(f"entrycheck: error: {path}: ") and fragment in line
    assert len(line) < 300 and "Traceback" not in proc.stderr


@pytest.mark.parametrize("special", ["/dev/zero", "fifo"])
def test_special_baselines(tmp_path, sample, special):
    path = Path(special)
    if special == "fifo":
        path = tmp_path / "baseline.json"
        os.mkfifo(path)
    proc = cli("check", str(sample), "--baseline", str(path))
    assert proc.returncode == 2 and "not a regular file" in proc.stderr
    assert len(proc.stderr.splitlines()) == 1


def test_write_baseline_is_a_set_up_step(tmp_path, sample, capsys):
    baseline = tmp_path / "baseline.json"
    baseline.write_text("{}")
    baseline.chmod(0o640)
    assert main(["check", str(sample), "--write-baseline", str(baseline)]) == 0
    out = capsys.readouterr().out
    assert "wrote 3 findings to the baseline" in out
    assert "(3 recorded in the baseline written now, " in out
    assert stat.S_IMODE(baseline.stat().st_mode) == 0o640
    text = baseline.read_text()
    written = json.loads(text)["findings"]
    assert text.endswith("}\n") and len([f for f in written if not f.get("suppressed")]) == 3
    # allowed findings are recorded too, with their callees: a root that leads to more
    # later is reported again (test_new_callees_below_a_known_root)
    assert all("callees" in f for f in written) and any(f.get("suppressed") for f in written)
    assert main(["check", str(sample), "--baseline", str(baseline)]) == 0
    assert main(["check", str(sample)]) == 1
    capsys.readouterr()


def test_output_file_ends_with_newline_and_keeps_its_mode(tmp_path, sample, capsys):
    out = tmp_path / "report.sarif"
    out.write_text("old")
    out.chmod(0o644)
    assert main(["check", str(sample), "--format", "sarif", "--output", str(out)]) == 1
    assert stat.S_IMODE(out.stat().st_mode) == 0o644
    assert out.read_text().endswith("}\n")
    fresh = tmp_path / "fresh.xml"
    assert main(["check", str(sample), "--format", "junit", "--output", str(fresh)]) == 1
    assert fresh.read_text().endswith("\n")
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o666 & ~umask
    assert capsys.readouterr().out == ""
