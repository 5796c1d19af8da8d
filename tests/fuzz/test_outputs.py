"""Outputs never take what is not theirs (issue 13): a report folder keeps foreign files
with or without --force and whatever its marker says, runs into one folder are
serialised, and check --output / --write-baseline replace no link, FIFO, device or
folder, leave no temporary file and give a new file the mode the umask says."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import SAMPLE, child_fails, error_line, run_child

MARKER = ".entrycheck-report"


def report(out: Path | str, *more: str, cwd: Path | None = None):
    return run_child("report", SAMPLE, "-o", out, *more, cwd=cwd,
                     env={"ENTRYCHECK_NO_CACHE": "1"})


def temps(folder: Path) -> list[str]:
    return [p.name for p in folder.rglob("*") if ".tmp" in p.name or ".old" in p.name
            or p.name.startswith(".entrycheck-tmp.")]


def test_force_in_the_current_folder_keeps_a_foreign_file(tmp_path):
    (tmp_path / "notes.txt").write_text("mine\n")
    proc = report(".", cwd=tmp_path)
    assert proc.returncode == 2 and "notes.txt" in error_line(proc.stderr)
    proc = report(".", "--force", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "notes.txt").read_text() == "mine\n"
    assert (tmp_path / "index.html").is_file() and not temps(tmp_path)
    assert report(".", "--force", cwd=tmp_path).returncode == 0  # and again, over itself
    assert (tmp_path / "notes.txt").read_text() == "mine\n"


@pytest.mark.parametrize("force", [False, True])
@pytest.mark.parametrize("listing", ["names", "digests"])
def test_a_forged_marker_does_not_give_away_foreign_files(tmp_path, force, listing):
    out = tmp_path / "out"
    (out / "graphs").mkdir(parents=True)
    mine = {"index.html": "my page\n", "report.json": "{}\n", "notes.txt": "mine\n",
            "graphs/pvh.svg": "my drawing\n"}
    for name, text in mine.items():
        (out / name).write_text(text)
    files = list(mine) if listing == "names" else \
        {n: [hashlib.sha256(t.encode()).hexdigest()] for n, t in mine.items()}
    (out / MARKER).write_text(json.dumps({"format": "entrycheck-report/1", "files": files}))
    proc = report(out, *(["--force"] if force else []))
    assert proc.returncode == 2, proc.stderr
    line = error_line(proc.stderr)
    assert ("not from an entrycheck report" if force else "--force") in line
    for name, text in mine.items():
        assert (out / name).read_text() == text, name
    assert not temps(out) and sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_marker_that_is_a_link_or_huge(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / MARKER).symlink_to("/dev/zero")
    assert report(out).returncode == 2
    assert (out / MARKER).is_symlink()
    (out / MARKER).unlink()
    (out / MARKER).write_text("[" * 100000)
    assert report(out).returncode == 0  # a marker that says nothing: an empty folder


def test_an_earlier_report_is_replaced_and_edited_files_are_kept(tmp_path):
    out = tmp_path / "out"
    assert report(out).returncode == 0
    assert report(out).returncode == 0
    (out / "report.json").write_text("edited by hand\n")
    proc = report(out, "--force")
    assert proc.returncode == 2 and "report.json is not from an entrycheck report" in \
        proc.stderr
    assert (out / "report.json").read_text() == "edited by hand\n"


def test_concurrent_reports_into_one_folder(tmp_path):
    out = tmp_path / "out"
    env = {**os.environ, "ENTRYCHECK_NO_CACHE": "1"}
    procs = [subprocess.Popen([sys.executable, "-m", "entrycheck.cli", "report", str(SAMPLE),
                               "-o", str(out)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True, env=env) for _ in range(4)]
    for proc in procs:
        _, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err
    assert (out / "index.html").is_file() and not temps(tmp_path)
    marker = json.loads((out / MARKER).read_text())
    assert sorted(marker["files"]) == sorted(
        str(p.relative_to(out)) for p in out.rglob("*") if p.is_file() and p.name != MARKER)


def test_report_under_a_file_or_where_nothing_can_be_made(tmp_path):
    (tmp_path / "afile").write_text("x\n")
    assert "afile/sub: cannot use it as the report folder: Not a directory" in child_fails(
        "report", SAMPLE, "-o", tmp_path / "afile" / "sub")
    assert "cannot make the report folder" in child_fails(
        "report", SAMPLE, "-o", "/proc/self/entrycheck-report")


def test_a_big_foreign_folder_is_not_walked(tmp_path):
    """`-o ../../..` (the root folder): refused at once, its subfolders never walked."""
    line = child_fails("report", SAMPLE, "-o", "/" + "../" * 20, cwd=tmp_path, timeout=60)
    assert "holds files that are not an entrycheck report" in line


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_report_in_a_read_only_parent(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        child_fails("report", SAMPLE, "-o", ro / "out")
    finally:
        ro.chmod(0o755)


def check_output(target: Path, option: str = "--output", umask: int = 0o022):
    return subprocess.run([sys.executable, "-m", "entrycheck.cli", "check", str(SAMPLE),
                           option, str(target)], capture_output=True, text=True, timeout=120,
                          preexec_fn=lambda: os.umask(umask))


@pytest.mark.parametrize("option", ["--output", "--write-baseline"])
@pytest.mark.parametrize("kind", ["symlink", "dangling", "fifo", "device", "folder"])
def test_special_targets_are_not_replaced(tmp_path, option, kind):
    target, real = tmp_path / "out", tmp_path / "real.txt"
    if kind == "symlink":
        real.write_text("keep\n")
        target.symlink_to(real)
    elif kind == "dangling":
        target.symlink_to(real)
    elif kind == "fifo":
        os.mkfifo(target)
    elif kind == "device":
        target.symlink_to("/dev/null")
    else:
        target.mkdir()
    before = os.lstat(target)
    proc = check_output(target, option)
    assert proc.returncode == 2, proc.stderr
    error_line(proc.stderr)
    after = os.lstat(target)
    assert (after.st_mode, after.st_ino) == (before.st_mode, before.st_ino)
    assert not real.exists() or real.read_text() == "keep\n"
    assert not temps(tmp_path)


@pytest.mark.parametrize("option", ["--output", "--write-baseline"])
def test_new_files_follow_the_umask_and_end_with_a_newline(tmp_path, option):
    for umask, mode in ((0o022, 0o644), (0o027, 0o640), (0o077, 0o600)):
        target = tmp_path / f"out-{umask:o}"
        assert check_output(target, option, umask).returncode in (0, 1)
        assert stat.S_IMODE(target.stat().st_mode) == mode
        assert target.read_bytes().endswith(b"\n")
    existing = tmp_path / "existing"
    existing.write_text("old\n")
    existing.chmod(0o604)
    assert check_output(existing, option).returncode in (0, 1)
    assert stat.S_IMODE(existing.stat().st_mode) == 0o604
    assert not temps(tmp_path)


@pytest.mark.parametrize("option", ["--output", "--write-baseline"])
def test_outputs_under_a_file(tmp_path, option):
    (tmp_path / "afile").write_text("x\n")
    proc = check_output(tmp_path / "afile" / "sub", option)
    assert proc.returncode == 2
    assert "afile/sub" in error_line(proc.stderr)
