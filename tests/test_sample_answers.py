"""The CLI's answers on sample_vmlinux match the known answers in its expected.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from entrycheck.cli import main

from .conftest import ROOT


def run_json(capsys, *argv: str) -> dict:
    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_entries(capsys, sample, expected):
    out = run_json(capsys, "entries", str(sample))
    got = {e["name"]: e for e in out["entries"]}
    assert set(got) == set(expected["entries"])
    for name, want in expected["entries"].items():
        assert got[name]["symbol"] == want["symbol"]
        assert got[name]["address"] == want["address"]
        assert got[name]["mode"] == want["mode"]
    assert "note XEN_ELFNOTE_ENTRY" in got["xen-pv"]["found"]
    assert "note XEN_ELFNOTE_PHYS32_ENTRY" in got["pvh"]["found"]


@pytest.mark.parametrize("entry", ["native", "xen-pv", "pvh"])
def test_reach_all(capsys, sample, expected, entry):
    out = run_json(capsys, "reach", str(sample), "--entry", entry, "--scope", "all")
    assert sorted(f["name"] for f in out["reached"]) == expected["reach"][entry]


def test_reach_init_scope_keeps_only_init_code(capsys, sample):
    out = run_json(capsys, "reach", str(sample), "--entry", "native")
    names = {f["name"] for f in out["reached"]}
    assert "x86_64_start_kernel" in names and "startup_64" in names
    assert "native_write_cr4" not in names and "rest_init" not in names  # .text / after boot
    assert all(f["section"] in (".init.text", ".head.text") for f in out["reached"])


@pytest.mark.parametrize("entry", ["xen-pv", "pvh"])
def test_skip_and_convergence(capsys, sample, expected, entry):
    out = run_json(capsys, "skip", str(sample), "--entry", entry)
    assert [f["name"] for f in out["skipped"]] == expected["skip"][entry]
    assert out["convergence"] == expected["convergence"][entry]
    for f in out["skipped"]:
        assert f["chain"][0] == "startup_64" and f["chain"][-1] == f["name"]


def test_why_chain_and_edge_kinds(capsys, sample, expected):
    want = expected["why"]["native"]["x86_64_start_kernel"]
    out = run_json(capsys, "why", str(sample), "--entry", "native", "x86_64_start_kernel")
    assert out["chain"] == want
    kinds = [link["edge"]["kind"] for link in out["links"][1:]]
    assert kinds == ["jump", "far"]
    assert out["links"][-1]["edge"]["via"] == "initial_code"


def test_why_without_image_uses_sample(capsys, sample, expected):
    assert main(["why", "--entry", "native", "x86_64_start_kernel", "--json"]) == 0
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert out["chain"] == expected["why"]["native"]["x86_64_start_kernel"]
    note = "entrycheck: note: no IMAGE given, using the sample kernel"
    assert captured.err == f"{note} {out['image']}\n"
    assert Path(out["image"]).read_bytes() == sample.read_bytes()  # the packaged copy


def test_ops_table_per_entry(capsys, sample, expected):
    xen = run_json(capsys, "why", str(sample), "--entry", "xen-pv", "xen_write_cr4")
    last = xen["links"][-1]["edge"]
    assert last["kind"] == "indirect-ops"
    assert last["via"] == f"{expected['ops_table']['symbol']} (stored by xen_start_kernel)"
    native = run_json(capsys, "reach", str(sample), "--entry", "native", "--scope", "all")
    names = {f["name"] for f in native["reached"]}
    assert "native_write_cr4" in names
    assert not names & set(expected["ops_table"]["xen_pv_stores"])  # only xen-pv stores them


def test_pvh_register_transfers(capsys, sample):
    out = run_json(capsys, "why", str(sample), "--entry", "pvh", "x86_64_start_kernel")
    assert out["chain"][:2] == ["pvh_start_xen", "startup_64"]
    assert out["links"][1]["edge"]["kind"] == "indirect-register"
    assert out["links"][1]["edge"]["instruction"].startswith("jmp")


def test_unresolved_are_listed(capsys, sample, expected):
    out = run_json(capsys, "reach", str(sample), "--entry", "native", "--scope", "all")
    by_function: dict[str, int] = {}
    for u in out["unresolved"]:
        by_function[u["function"]] = by_function.get(u["function"], 0) + 1
    want = {u["function"]: u["count"] for u in expected["unresolved_indirect_calls"]}
    assert by_function == want
    assert out["indirect"]["unresolved"] == sum(want.values())


def test_text_output(capsys, sample):
    assert main(["skip", str(sample), "--entry", "xen-pv"]) == 0
    text = capsys.readouterr().out
    assert "paths converge at x86_64_start_reservations" in text
    assert "kasan_early_init" in text and "via startup_64 > common_startup_64" in text


def test_user_defined_entry(capsys, sample):
    out = run_json(capsys, "reach", str(sample), "--entry", "prep=xen_prepare_pvh",
                   "--scope", "all")
    assert out["entry"] == "prep"
    assert {f["name"] for f in out["reached"]} == {"xen_prepare_pvh", "pvh_init_start_info"}


def test_crosscheck_cli_agrees_with_angr(capsys, sample):
    out = run_json(capsys, "crosscheck", str(sample))
    assert out["functions"] >= 10 and out["mismatches"] == []


def _call_line(source: str, helper: str) -> int:
    """The line of the sample source that calls `helper()`."""
    lines = (ROOT / "sample_vmlinux" / source).read_text().splitlines()
    return next(i + 1 for i, line in enumerate(lines) if f"{helper}();" in line)


def test_why_inlined_helper(capsys, sample, expected):
    for host, helpers in expected["inlined"].items():
        for helper in helpers:
            out = run_json(capsys, "why", str(sample), "--entry", "native", helper)
            assert out["chain"][-2:] == [host, helper]
            last = out["links"][-1]["edge"]
            assert last["kind"] == "inlined"
            assert last["instruction"] == f"head64.c:{_call_line('head64.c', helper)}"


def test_why_inlined_helper_not_on_path(sample):
    assert main(["why", str(sample), "--entry", "xen-pv", "cr4_init_shadow"]) == 2
