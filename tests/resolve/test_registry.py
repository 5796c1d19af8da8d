"""entrycheck.resolve: every registered resolver has its test module here, names and edge
kinds are declared, and each strategy of sample_vmlinux/expected.json gives the chain and
edge the sources say (through the CLI, as a user sees it)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from entrycheck.cli import main
from entrycheck.model import EDGE_STYLES
from entrycheck.resolve import RESOLVERS

HERE = Path(__file__).resolve().parent
EXPECTED = json.loads((HERE.parents[1] / "sample_vmlinux" / "expected.json").read_text())


def run_json(capsys, *argv: str) -> dict:
    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_every_resolver_has_a_test_module():
    modules = {cls.__module__.rsplit(".", 1)[1] for cls in RESOLVERS}
    missing = sorted(m for m in modules if not (HERE / f"test_{m}.py").exists())
    assert missing == []


def test_resolvers_declare_name_reads_and_kinds():
    names = [cls.name for cls in RESOLVERS]
    assert len(set(names)) == len(names) == len(RESOLVERS)
    assert names[0] == "direct"  # direct edges first: other resolvers give way to them
    for cls in RESOLVERS:
        assert cls.reads, cls.name
        assert all(kind in EDGE_STYLES for kind in cls.adds), cls.name


@pytest.mark.parametrize("strategy", sorted(EXPECTED["strategies"]))
def test_sample_strategy(capsys, sample, strategy):
    """The function is reached only through the strategy; `why` names its caller and the
    kind of the last edge (and what it went through)."""
    case = EXPECTED["strategies"][strategy]
    out = run_json(capsys, "reach", str(sample), "--entry", case["entry"], "--scope", "all")
    assert case["function"] in {f["name"] for f in out["reached"]}
    if "not_reached" in case:
        assert case["not_reached"] not in {f["name"] for f in out["reached"]}
    why = run_json(capsys, "why", str(sample), "--entry", case["entry"], case["function"])
    assert why["chain"][-2:] == [case["from"], case["function"]]
    edge = why["links"][-1]["edge"]
    assert edge["kind"] == case["kind"]
    assert edge.get("via") == case.get("via")
