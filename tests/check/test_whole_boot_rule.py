"""The generic rule over the whole boot (EC101, `generic: native_only_boot`) on variants of
the sample with a hook slot: init code native reaches only through a hook the Xen path
sets to its own target is one finding per root; `allow_points` allows the slot with a
reason; and against a base (or a baseline) a root that leads to init code it did not lead
to before is reported again, even where a rule allows it."""

from __future__ import annotations

import json

import pytest

from entrycheck.cli import main

from .conftest import build_variant, merged

# x86_init.oem.banner as the sample's `banner_ops.banner`: setup_arch calls through it,
# native keeps default_banner (init code), xen_start_kernel sets xen_banner.
HOOK = {
    "main.c": [
        ("noinline __init void setup_arch(void)\n{",
         "struct banner_ops { void (*banner)(void); };\n"
         "volatile unsigned long banner_shown;\n"
         "noinline __init void default_banner(void)\n{\n\tbanner_shown = 1;\n}\n"
         "struct banner_ops banner_ops = { .banner = default_banner };\n\n"
         "noinline __init void setup_arch(void)\n{\n\tbanner_ops.banner();")],
    "enlighten_pv.c": [
        ("noinline __init void xen_setup_features(void)",
         "struct banner_ops { void (*banner)(void); };\n"
         "extern struct banner_ops banner_ops;\n"
         "noinline __init void xen_banner(void)\n{\n\txen_features_ready |= 4;\n}\n\n"
         "noinline __init void xen_setup_features(void)"),
        ("\tpv_ops.cpu.load_idt = xen_load_idt;",
         "\tpv_ops.cpu.load_idt = xen_load_idt;\n\tbanner_ops.banner = xen_banner;")],
}
# ...and native's banner now also calls a new init function the Xen banner lacks
NEW_CALLEE = {
    "main.c": [
        ("noinline __init void default_banner(void)\n{\n\tbanner_shown = 1;\n}\n",
         "noinline __init void banner_feature_init(void)\n{\n\tbanner_shown |= 8;\n}\n"
         "noinline __init void default_banner(void)\n{\n\tbanner_shown = 1;\n"
         "\tbanner_feature_init();\n}\n")],
}
RULE = """id: EC101
title: Init code the native boot runs after the paths converge that an entry never runs
severity: warning
message: "{reference} runs {symbol} {point}; {entry} never does"
generic: native_only_boot
"""
ALLOWED = RULE + """allow_points:
  xen-pv:
    banner_ops: "Xen PV prints its own banner (xen_banner)"
"""


@pytest.fixture(scope="module")
def kernels(tmp_path_factory) -> dict:
    return {"hook": build_variant(tmp_path_factory.mktemp("hook"), HOOK),
            "new-callee": build_variant(tmp_path_factory.mktemp("callee"),
                                        merged(HOOK, NEW_CALLEE))}


def check(capsys, tmp_path, image, rule: str, *argv: str) -> tuple[int, dict]:
    rules = tmp_path / "rules.yaml"
    rules.write_text(rule)
    code = main(["check", str(image), "--rules", str(rules), "--format", "json", *argv])
    return code, json.loads(capsys.readouterr().out)


def test_init_code_behind_a_hook_the_entry_overrides_is_found(capsys, tmp_path, kernels):
    code, report = check(capsys, tmp_path, kernels["hook"], RULE)
    assert code == 1
    [finding] = report["findings"]
    assert (finding["rule"], finding["entry"], finding["symbol"]) == (
        "EC101", "xen-pv", "default_banner")
    assert finding["message"] == ("native runs default_banner through the hook banner_ops; "
                                  "xen-pv never does")
    assert finding["chain"][-2:] == ["setup_arch", "default_banner"]


def test_an_allowed_hook_slot_is_suppressed_with_its_reason(capsys, tmp_path, kernels):
    code, report = check(capsys, tmp_path, kernels["hook"], ALLOWED)
    assert code == 0 and report["findings"] == []
    [allowed] = report["suppressed"]
    assert allowed["symbol"] == "default_banner"
    assert allowed["suppressed"] == "Xen PV prints its own banner (xen_banner)"


def test_a_new_callee_below_an_allowed_root_is_new_against_the_base(capsys, tmp_path,
                                                                     kernels):
    """The allowance covered default_banner as it was at the base; the head's new call
    from it (banner_feature_init, which Xen's banner lacks) is reported, and only it."""
    code, report = check(capsys, tmp_path, kernels["new-callee"], ALLOWED,
                         "--base", str(kernels["hook"]))
    assert code == 1
    [finding] = report["findings"]
    assert finding["symbol"] == "default_banner" and finding["suppressed"] is None
    assert finding["callees"] == ["banner_feature_init"]
    assert finding["new_callees"] == ["banner_feature_init"]
    code, report = check(capsys, tmp_path, kernels["hook"], ALLOWED,
                         "--base", str(kernels["hook"]))
    assert code == 0 and report["findings"] == []  # nothing new: the allowance holds
    rules = tmp_path / "rules.yaml"
    assert main(["check", str(kernels["new-callee"]), "--rules", str(rules),
                 "--base", str(kernels["hook"])]) == 1
    out = capsys.readouterr().out
    assert "  new below it since the base or baseline: banner_feature_init\n" in out


def test_a_baseline_records_callees(capsys, tmp_path, kernels):
    baseline = tmp_path / "baseline.json"
    code, _ = check(capsys, tmp_path, kernels["hook"], RULE, "--write-baseline",
                    str(baseline))
    assert code == 0
    [written] = json.loads(baseline.read_text())["findings"]
    assert written["symbol"] == "default_banner" and written["callees"] == []
    code, report = check(capsys, tmp_path, kernels["new-callee"], RULE,
                         "--baseline", str(baseline))
    assert code == 1
    assert [(f["symbol"], f["new_callees"]) for f in report["findings"]] == [
        ("default_banner", ["banner_feature_init"])]
    code, report = check(capsys, tmp_path, kernels["hook"], RULE, "--baseline",
                         str(baseline))
    assert code == 0 and report["summary"]["known"] == 1


def test_a_format_1_baseline_knows_every_callee(capsys, tmp_path, kernels):
    """A baseline written before callees were recorded: its roots stay known whatever
    they lead to."""
    code, report = check(capsys, tmp_path, kernels["new-callee"], RULE)
    fingerprint = report["findings"][0]["fingerprint"]
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"format": "entrycheck-baseline/1",
                               "findings": [{"fingerprint": fingerprint}]}))
    code, report = check(capsys, tmp_path, kernels["new-callee"], RULE, "--baseline",
                         str(old))
    assert code == 0 and report["findings"] == []


def test_a_finding_whose_allowance_was_removed_is_new(capsys, tmp_path, kernels):
    """The baseline knew default_banner only as allowed; with the allowance gone it is
    reported, not counted as known."""
    baseline = tmp_path / "allowed.json"
    code, _ = check(capsys, tmp_path, kernels["hook"], ALLOWED, "--write-baseline",
                    str(baseline))
    assert code == 0
    code, report = check(capsys, tmp_path, kernels["hook"], RULE, "--baseline",
                         str(baseline))
    assert code == 1 and [f["symbol"] for f in report["findings"]] == ["default_banner"]
    assert report["summary"]["known"] == 0


def test_a_baseline_and_a_base_know_their_callees_together(capsys, tmp_path, kernels):
    """The baseline knew banner_feature_init below default_banner, the base did not: the
    head's call is known (the base does not overwrite what the baseline knew)."""
    baseline = tmp_path / "baseline.json"
    code, _ = check(capsys, tmp_path, kernels["new-callee"], RULE, "--write-baseline",
                    str(baseline))
    code, report = check(capsys, tmp_path, kernels["new-callee"], RULE, "--baseline",
                         str(baseline), "--base", str(kernels["hook"]))
    assert code == 0 and report["findings"] == [] and report["summary"]["known"] == 1
