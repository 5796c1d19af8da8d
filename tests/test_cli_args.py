"""The command line's small promises (issue 12): progress on stderr only, contradictory
options refused, "did you mean", FUNCTION in `why --help`, IMAGE vs FUNCTION for crosscheck,
counted words, the README's package list, apt's output shown."""

from __future__ import annotations

import os
import pty
import subprocess
import sys

import pytest

from entrycheck.cli import _parse, main

from .conftest import ROOT
from .snippets import assemble


def test_progress_bar_writes_to_stderr_only(tmp_path, sample):
    """stdout a file, stderr a terminal: the bar goes to the terminal, stdout stays clean."""
    out = tmp_path / "out.txt"
    parent, child = pty.openpty()
    env = {**os.environ, "ENTRYCHECK_NO_CACHE": "1", "COLUMNS": "80"}
    with out.open("wb") as stdout:
        proc = subprocess.Popen([sys.executable, "-m", "entrycheck.cli", "reach", str(sample),
                                 "--entry", "xen-pv"], stdout=stdout, stderr=child, env=env)
        os.close(child)
        seen = b""
        while True:
            try:
                chunk = os.read(parent, 4096)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
        assert proc.wait(60) == 0
    os.close(parent)
    text = out.read_bytes()
    assert text.startswith(str(sample).encode()) and b"\r" not in text and b"\x1b" not in text
    assert b"decoding from" in seen  # the bar was drawn, on the terminal


def test_json_with_another_format_is_an_error(sample, capsys):
    assert main(["check", str(sample), "--json", "--format", "sarif"]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert "--json" in line and "--format sarif" in line
    assert main(["check", str(sample), "--json", "--format", "json"]) == 1
    capsys.readouterr()


def test_why_help_names_function(capsys):
    with pytest.raises(SystemExit):
        main(["why", "--help"])
    out = capsys.readouterr().out
    assert "FUNCTION" in out.split("options:")[0].split("positional arguments:")[1]


@pytest.mark.parametrize(("argv", "fragment"), [
    (["why", "--entry", "xen-pv", "start_kernl"], "did you mean start_kernel"),
    (["reach", "--entry", "xen_pv"], "did you mean xen-pv?"),
    (["skip", "--entry", "pvh", "--against", "nativ"], "did you mean native"),
])
def test_did_you_mean(sample, capsys, argv, fragment):
    assert main([argv[0], str(sample), *argv[1:]]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert fragment in line and len(line) < 300


@pytest.mark.parametrize("argv", [["reach", "--entry", "native32"],  # not in this image
                                  ["why", "--entry", "xen-pv", "cr4_init_shadow"]])
def test_no_suggestion_repeats_the_name(sample, capsys, argv):
    assert main([argv[0], str(sample), *argv[1:]]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert f"did you mean {argv[-1]}" not in line and "native32 or" not in line


def test_skip_of_an_entry_against_itself(sample, capsys):
    assert main(["skip", str(sample), "--entry", "native"]) == 2
    assert "--entry and --against are both native" in capsys.readouterr().err


def test_why_with_an_image_and_no_function(sample, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["why", str(sample), "--entry", "native"])
    assert exit_.value.code == 2
    assert "why needs a FUNCTION after the image" in capsys.readouterr().err


def test_check_of_an_image_without_entries_is_an_error(tmp_path, sample, capsys):
    """A check that finds no boot entry would pass whatever the file: exit 2."""
    snip = assemble(".text\n.globl main\nmain: ret\n")
    assert main(["check", str(snip.path), "--cache-dir", str(tmp_path)]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert "no boot entry found" in line
    assert main(["check", str(sample), "--base", str(snip.path),
                 "--cache-dir", str(tmp_path)]) == 2
    assert "--base" in capsys.readouterr().err


def test_crosscheck_tells_image_from_function(tmp_path, monkeypatch, sample):
    monkeypatch.chdir(tmp_path)
    args = _parse(["crosscheck", "start_kernel"])
    assert args.image is None and args.functions == ["start_kernel"]
    args = _parse(["crosscheck", str(sample), "start_kernel", "--sample", "3"])
    assert args.image == sample and args.functions == ["start_kernel"]
    args = _parse(["crosscheck", "./vmlinux-not-here"])
    assert str(args.image) == "vmlinux-not-here" and args.functions == []
    (tmp_path / "vmlinux").write_bytes(b"")
    assert _parse(["crosscheck", "vmlinux"]).image is not None
    why = _parse(["why", "start_kernel", "--entry", "pvh"])
    assert why.image is None and why.function == "start_kernel"


def test_counts_are_plural_correct(sample, capsys):
    assert main(["check", str(sample)]) == 1
    summary = capsys.readouterr().out.splitlines()[-1]
    assert summary.startswith("entrycheck: 1 error, 2 warnings, 0 notes ")
    assert main(["why", str(sample), "--entry", "native", "startup_64"]) == 0
    assert "in 0 steps:" in capsys.readouterr().out


def test_readme_lists_the_debian_packages():
    readme = (ROOT / "README.md").read_text()
    setup = readme[readme.index("## Set-up"):readme.index("## Use")]
    for package in ("gcc", "make", "binutils", "qemu-system-x86", "graphviz", "chromium", "npm"):
        assert package in setup, package


def test_install_system_deps_shows_apt():
    script = (ROOT / "scripts" / "install-system-deps").read_text()
    apt_lines = [ln for ln in script.splitlines() if ln.lstrip().startswith(("apt-get",
                                                                              "DEBIAN_FRONTEND"))]
    assert apt_lines and not any("/dev/null" in ln or "-qq" in ln for ln in apt_lines)
    assert "set -euo pipefail" in script
    assert "install-npm-deps" in (ROOT / "Makefile").read_text()


def test_why_answers_does_not_reach_with_exit_1(capsys, sample):
    """An entry that does not reach a function is an answer (exit 1, like grep finding
    nothing), with where the entries that do reach it part from it; a name no function
    has stays an error (exit 2)."""
    assert main(["why", str(sample), "--entry", "xen-pv", "native_write_cr4"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[1] == "xen-pv does not reach native_write_cr4."
    assert "    parts from xen-pv at setup_arch [indirect-slot via pv_ops] > native_write_cr4" \
        in out
    assert main(["why", str(sample), "--entry", "xen-pv", "no_such_function"]) == 2
