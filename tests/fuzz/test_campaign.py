"""A small seeded run of the fuzz campaign (scripts/fuzz.py), bounded to about 30
seconds: every case of every family answers or fails on one line."""

from __future__ import annotations

import importlib.util
import sys
from collections import Counter

from ..conftest import ROOT


def _fuzz():
    spec = importlib.util.spec_from_file_location("fuzz", ROOT / "scripts" / "fuzz.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["fuzz"] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_seeded_smoke_run():
    fuzz = _fuzz()
    results, seconds = fuzz.campaign(list(fuzz.FAMILIES), 150, seed=11, timeout=20,
                                     budget=30)
    outcomes = Counter(r.outcome for r in results)
    bad = [f"{r.family} #{r.index} {r.label}: {r.outcome} {r.line}" for r in results
           if r.outcome not in ("ok", "error")]
    assert not bad, bad
    assert len(results) >= 40 and outcomes["error"] and outcomes["ok"]
    assert len({r.family for r in results}) >= 6
    assert seconds < 90


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
