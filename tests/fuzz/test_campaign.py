"""A small seeded run of the fuzz campaign (scripts/fuzz.py), bounded to about 30
seconds: every case of every family answers or fails on one line."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from collections import Counter

from ..conftest import ROOT


def _fuzz():
    spec = importlib.util.spec_from_file_location("fuzz", ROOT / "scripts" / "fuzz.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["fuzz"] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_seeded_smoke_run(tmp_path):
    """The campaign in a process of its own: its forked cases' peak RSS is theirs, not
    that of a test process grown by earlier tests' analyses."""
    summary = tmp_path / "summary.json"
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "fuzz.py"), "--seed", "11",
                           "--cases", "150", "--timeout", "20", "--budget", "30",
                           "--json", str(summary)], capture_output=True, text=True,
                          timeout=300, check=False)
    data = json.loads(summary.read_text())
    bad = [f"{r['family']} #{r['index']} {r['label']}: {r['outcome']} {r['line']}"
           for r in data["failures"]]
    assert proc.returncode == 0 and not bad, bad or proc.stderr[-2000:]
    outcomes = Counter(data["outcomes"])
    assert data["cases"] >= 40 and outcomes["error"] and outcomes["ok"]
    assert sum(1 for f in data["families"].values() if sum(f.values())) >= 6
    assert data["seconds"] < 90


def test_cases_are_reproducible(tmp_path):
    fuzz = _fuzz()
    corpus = fuzz.make_corpus(tmp_path / "corpus")
    for family in fuzz.FAMILIES:
        argv = []
        for attempt in ("a", "b"):
            work = tmp_path / f"{family}-{attempt}"
            work.mkdir()
            case = fuzz.make_case(family, 3, 5, work, corpus)
            argv.append([a.replace(str(work), "WORK") for a in case.argv])
        assert argv[0] == argv[1], family
