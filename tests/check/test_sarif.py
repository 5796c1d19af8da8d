"""SARIF for code scanning: Microsoft's multitool with GitHub's ingestion rules, the OASIS
schema (vendored in tests/data), help for every rule, regions, %SRCROOT%-relative URIs."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import jsonschema
import pytest

from entrycheck.check.sarif import _source_location
from entrycheck.cli import main

from ..conftest import ROOT

SCHEMA = ROOT / "tests" / "data" / "sarif-schema-2.1.0.json"


def sarif_of(tmp_path: Path, *argv: str, expect: int = 1) -> tuple[Path, dict]:
    out = tmp_path / "check.sarif"
    assert main(["check", *argv, "--format", "sarif", "--output", str(out)]) == expect
    return out, json.loads(out.read_text())


def multitool_issues(tool: Path, sarif: Path, tmp_path: Path) -> list[tuple[str, str, str]]:
    """(level, rule id, message) of everything the multitool reports with Gh;Sarif rules."""
    log = tmp_path / "validation.sarif"
    proc = subprocess.run([str(tool), "validate", str(sarif), "--rule-kind", "Gh;Sarif",
                           "--output", str(log)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Analysis completed successfully" in proc.stdout
    results = json.loads(log.read_text())["runs"][0]["results"]
    return [(r.get("level", "warning"), r["ruleId"], r["message"].get("text", ""))
            for r in results]


def test_vendored_schema_has_its_notice():
    notice = (SCHEMA.parent / "sarif-schema-2.1.0.NOTICE").read_text()
    assert "Copyright (c) OASIS Open" in notice
    assert json.loads(SCHEMA.read_text())["id"] in notice


def test_multitool_gh_rules_on_the_failing_sample(multitool, sample, tmp_path):
    path, doc = sarif_of(tmp_path, str(sample))
    assert len([r for r in doc["runs"][0]["results"] if "suppressions" not in r]) == 3
    assert multitool_issues(multitool, path, tmp_path) == []


def test_multitool_gh_rules_on_the_proof_kernel(multitool, proof_head, sample, tmp_path):
    """The pre-merge case: head with a new native-only init call against its base."""
    path, doc = sarif_of(tmp_path, str(proof_head), "--base", str(sample))
    [result] = [r for r in doc["runs"][0]["results"] if "suppressions" not in r]
    assert result["ruleId"] == "EC100"
    assert result["locations"][0]["logicalLocations"][0]["name"] == "early_new_feature_init"
    assert multitool_issues(multitool, path, tmp_path) == []


def test_multitool_finds_what_github_rejects(multitool, sample, tmp_path):
    """The validator run is not vacuous: a rule without help is GH2012, a result without
    a region SARIF2017 (the two classes issue 12 saw)."""
    path, doc = sarif_of(tmp_path, str(sample))
    run = doc["runs"][0]
    del run["tool"]["driver"]["rules"][0]["help"]
    del run["results"][0]["locations"][0]["physicalLocation"]["region"]
    path.write_text(json.dumps(doc))
    found = {(level, rule) for level, rule, _ in multitool_issues(multitool, path, tmp_path)}
    assert ("error", "GH2012") in found and ("warning", "SARIF2017") in found


def test_sarif_against_the_oasis_schema(proof_head, sample, tmp_path):
    _, doc = sarif_of(tmp_path, str(proof_head), "--base", str(sample))
    jsonschema.validate(doc, json.loads(SCHEMA.read_text()))


def test_rules_carry_help_and_anchors_that_exist(sample, tmp_path):
    _, doc = sarif_of(tmp_path, str(sample), "--rules-url", "https://host.example/r.md")
    anchors = {m.lower() for m in re.findall(r"^### (\S+)$",
                                             (ROOT / "rules" / "README.md").read_text(), re.M)}
    for rule in doc["runs"][0]["tool"]["driver"]["rules"]:
        assert rule["name"] != rule["id"] and re.fullmatch(r"[A-Z][A-Za-z0-9]+", rule["name"])
        assert rule["help"]["text"] and rule["help"]["markdown"]
        base, anchor = rule["helpUri"].split("#")
        assert base == "https://host.example/r.md" and anchor in anchors


def test_results_have_regions_and_srcroot_uris(sample, tmp_path):
    _, doc = sarif_of(tmp_path, str(sample))
    run = doc["runs"][0]
    assert "%SRCROOT%" in run["originalUriBaseIds"]
    for result in run["results"]:
        loc = result["locations"][0]["physicalLocation"]
        assert loc["region"]["startLine"] >= 1 and loc["region"]["startColumn"] == 1
        if loc["artifactLocation"]["uri"].endswith(".c"):
            assert loc["artifactLocation"]["uriBaseId"] == "%SRCROOT%"
            assert not loc["artifactLocation"]["uri"].startswith(("/", "file:", "./"))


def test_source_root_option(sample, tmp_path):
    _, doc = sarif_of(tmp_path, str(sample), "--source-root", "/src/linux/")
    assert doc["runs"][0]["originalUriBaseIds"]["%SRCROOT%"] == {"uri": "file:///src/linux/"}


@pytest.mark.parametrize(("file", "roots", "want"), [
    ("debian/build/build_amd64_none_cloud-amd64/arch/x86/xen/enlighten_pv.c",
     ["debian/build/build_amd64_none_cloud-amd64", "/build/reproducible-path/linux-6.1.192"],
     {"uri": "arch/x86/xen/enlighten_pv.c", "uriBaseId": "%SRCROOT%"}),
    ("/build/reproducible-path/linux-6.1.192/arch/x86/kernel/head_64.S",
     ["debian/build/build_amd64_none_cloud-amd64", "/build/reproducible-path/linux-6.1.192"],
     {"uri": "arch/x86/kernel/head_64.S", "uriBaseId": "%SRCROOT%"}),
    ("head64.c", ["."], {"uri": "head64.c", "uriBaseId": "%SRCROOT%"}),
    ("/elsewhere/x y.c", ["/src"], {"uri": "file:///elsewhere/x%20y.c"}),
])
def test_source_locations(file, roots, want):
    assert _source_location(file, roots) == want
