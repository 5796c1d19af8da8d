"""Rebuilding sample_vmlinux from its sources gives the same known answers."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from entrycheck.cli import main

from .conftest import ROOT

needs_toolchain = pytest.mark.skipif(
    not all(shutil.which(t) for t in ("gcc", "ld", "make")), reason="needs gcc, ld and make")


@needs_toolchain
def test_rebuild_gives_known_answers(tmp_path, capsys, expected):
    src = tmp_path / "src"
    shutil.copytree(ROOT / "sample_vmlinux", src, ignore=shutil.ignore_patterns("vmlinux", "build"))
    subprocess.run(["make", "-s", "-C", str(src)], check=True, capture_output=True)
    built = src / "vmlinux"
    assert main(["skip", str(built), "--entry", "xen-pv", "--json"]) == 0
    skip = json.loads(capsys.readouterr().out)
    assert [f["name"] for f in skip["skipped"]] == expected["skip"]["xen-pv"]
    assert skip["convergence"] == expected["convergence"]["xen-pv"]
    assert main(["entries", str(built), "--json"]) == 0
    entries = {e["name"]: e["symbol"] for e in json.loads(capsys.readouterr().out)["entries"]}
    assert entries == {k: v["symbol"] for k, v in expected["entries"].items()}
    verify = subprocess.run(["python3", str(src / "verify.py"), str(built)],
                            capture_output=True, text=True)
    assert verify.returncode == 0, verify.stdout + verify.stderr
