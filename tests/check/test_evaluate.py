"""The pre-merge check: rule validation, findings on the sample, formats, base vs head."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from entrycheck.check import evaluate
from entrycheck.cli import main

from ..conftest import ROOT

SCHEMA = ROOT / "tests" / "data" / "sarif-schema-2.1.0.json"  # OASIS, see its .NOTICE


def cli(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "entrycheck.cli", *argv], capture_output=True,
                          text=True, timeout=300)


def check_json(capsys, *argv: str) -> tuple[int, dict]:
    code = main(["check", *argv, "--format", "json"])
    return code, json.loads(capsys.readouterr().out)


def test_builtin_rules_on_sample(capsys, sample):
    code, report = check_json(capsys, str(sample))
    assert code == 1
    got = {(f["rule"], f["entry"], f["symbol"]) for f in report["findings"]}
    assert got == {("EC001", "xen-pv", "cr4_init_shadow"),
                   ("EC002", "xen-pv", "kasan_early_init"),
                   ("EC100", "xen-pv", "copy_bootdata")}
    suppressed = {(f["rule"], f["symbol"]) for f in report["suppressed"]}
    assert ("EC003", "load_ucode_bsp") in suppressed and ("EC100", "startup_64") in suppressed
    for f in report["findings"]:
        assert f["chain"][0] == "startup_64" and f["reached_by"] == "native"
    assert report["summary"] == {"error": 1, "warning": 2, "note": 0, "suppressed": 6,
                                 "known": 0}


def test_text_format_follows_kernel_warning_habit(capsys, sample):
    assert main(["check", str(sample)]) == 1
    out = capsys.readouterr().out.splitlines()
    line = next(x for x in out if "[EC002]" in x)
    assert line.startswith(f"{sample}: kasan_init.c:")
    assert ": warning: entrycheck: xen-pv: kasan_early_init: " in line
    assert out[out.index(line) + 1].strip().startswith("native reaches it: startup_64 > ")


def test_fail_on_threshold(capsys, sample, tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text((ROOT / "rules" / "early-init.yaml").read_text().split("---")[2])  # EC003
    assert main(["check", str(sample), "--rules", str(rules), "--fail-on", "note"]) == 0
    assert main(["check", str(sample), "--rules", str(rules / "..")]) == 2  # not a rules dir
    capsys.readouterr()


def test_sarif_validates_against_oasis_schema(capsys, sample):
    import jsonschema

    assert main(["check", str(sample), "--format", "sarif"]) == 1
    doc = json.loads(capsys.readouterr().out)
    jsonschema.validate(doc, json.loads(SCHEMA.read_text()))
    run = doc["runs"][0]
    rule_ids = {r["id"] for r in run["tool"]["driver"]["rules"]}
    assert {"EC001", "EC002", "EC003", "EC004", "EC005", "EC006", "EC007", "EC100"} <= rule_ids
    active = [r for r in run["results"] if "suppressions" not in r]
    assert len(active) == 3
    for result in active:
        assert result["partialFingerprints"]["entrycheck/v1"]
        steps = result["codeFlows"][0]["threadFlows"][0]["locations"]
        assert steps[0]["location"]["logicalLocations"][0]["name"] == "startup_64"
        assert result["locations"][0]["physicalLocation"]["region"]["startLine"] > 0


def test_junit(capsys, sample, tmp_path):
    out = tmp_path / "junit.xml"
    assert main(["check", str(sample), "--format", "junit", "--output", str(out)]) == 1
    suite = ET.parse(out).getroot().find("testsuite")
    failed = [c for c in suite.findall("testcase") if c.find("failure") is not None]
    assert {(c.get("classname"), c.get("name")) for c in failed} == {
        ("entrycheck.EC001", "xen-pv"), ("entrycheck.EC002", "xen-pv"),
        ("entrycheck.EC100", "xen-pv")}
    assert int(suite.get("tests")) == 9 * 3  # EC001-EC007, EC100, EC101 x three entries


@pytest.mark.parametrize(("text", "line", "fragment"), [
    ("id: X1\ntitle: t\nseverity: fatal\nmessage: m\ngeneric: native_only_init\n", 3,
     "severity must be one of"),
    ("id: X1\ntitle: t\nseverity: note\nmessage: m\nmatch:\n  - function: '(('\n"
     "require:\n  native_only: true\n", 6, "bad regular expression"),
    ("id: X1\ntitle: t\nseverity: note\nmessage: m\nmatch:\n  - functon: foo\n"
     "require:\n  native_only: true\n", 6, "unknown matcher 'functon'"),
    ("id: X1\ntitle: t\nseverity: note\nmessage: m\nmatch:\n  - function: foo\n"
     "require:\n  reached_by: [xen-pv]\n", 8, "require takes exactly one of"),
    ("id: X1\ntitle: t\nseverity: note\nmessage: m\nmatch: [\n", 6, "invalid YAML"),
    ("id: X1\nseverity: note\nmessage: m\ngeneric: native_only_init\n", 1,
     "missing required key 'title'"),
    ("id: X1\ntitle: t\nseverity: note\nmessage: m\ncolour: red\ngeneric: native_only_init\n",
     5, "unknown key 'colour'"),
])
def test_malformed_rule_file(tmp_path, sample, text, line, fragment):
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    proc = cli("check", str(sample), "--rules", str(bad))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    [message] = proc.stderr.strip().splitlines()
    assert message.startswith(f"entrycheck: error: {bad}:{line}: ") and fragment in message


FEATURE = """
noinline __init void early_new_feature_init(void)
{
\tasm volatile("" ::: "memory");
\tboot_command_line[1] = 1;
}
"""


@pytest.mark.skipif(not all(shutil.which(t) for t in ("gcc", "ld", "make")),
                    reason="needs gcc, ld and make to build the head kernel")
def test_base_vs_head_reports_exactly_the_new_feature(tmp_path, capsys, sample):
    """A patch wires a new early-init function into the native path only: the check
    against the base build reports it, with its chain, and fails; the base is clean under
    its own baseline."""
    src = tmp_path / "head"
    shutil.copytree(ROOT / "sample_vmlinux", src, ignore=shutil.ignore_patterns("vmlinux", "build"))
    head64 = src / "head64.c"
    text = head64.read_text()
    anchor = "\tload_ucode_bsp();"
    assert anchor in text
    text = text.replace(anchor, anchor + "\n\tearly_new_feature_init();")
    decl = "noinline __init __noreturn void x86_64_start_kernel"
    assert decl in text
    head64.write_text(text.replace(decl, "void early_new_feature_init(void);\n" + decl, 1))
    main_c = src / "main.c"
    main_c.write_text(main_c.read_text() + FEATURE)
    subprocess.run(["make", "-s", "-C", str(src)], check=True, capture_output=True)
    head = src / "vmlinux"

    code, report = check_json(capsys, str(head), "--base", str(sample))
    assert code == 1
    assert [(f["rule"], f["entry"], f["symbol"]) for f in report["findings"]] == [
        ("EC100", "xen-pv", "early_new_feature_init")]
    assert report["findings"][0]["chain"] == [
        "startup_64", "common_startup_64", "x86_64_start_kernel", "early_new_feature_init"]
    assert report["summary"]["known"] == 3

    baseline = tmp_path / "baseline.json"
    assert main(["check", str(sample), "--write-baseline", str(baseline)]) == 0  # a set-up step
    assert "wrote 3 findings to the baseline" in capsys.readouterr().out
    assert baseline.read_text().endswith("}\n")
    assert main(["check", str(sample), "--baseline", str(baseline)]) == 0
    assert main(["check", str(head), "--baseline", str(baseline)]) == 1
    capsys.readouterr()


def test_fingerprints_ignore_addresses():
    from entrycheck.check.evaluate import fingerprint
    same = fingerprint("EC100", "xen-pv", "foo")
    assert fingerprint("EC100", "xen-pv", "foo.constprop.0") == same
    assert fingerprint("EC100", "xen-pv", "foo") != fingerprint("EC100", "pvh", "foo")


def test_rules_readme_documents_every_key():
    doc = (ROOT / "rules" / "README.md").read_text()
    for key in ("id", "title", "severity", "message", "references", "match", "require",
                "allow", "bits", "generic", "allow_functions", "allow_roots", "function",
                "inlined", "data", "instruction", "reached_by_all", "not_reached_by",
                "native_only"):
        assert f"`{key}`" in doc, key


def test_output_path_is_not_created_on_error(tmp_path, sample):
    out = tmp_path / "report.sarif"
    proc = cli("check", str(sample), "--rules", str(tmp_path / "nope"), "--output", str(out))
    assert proc.returncode == 2 and not out.exists()
    assert not list(Path(tmp_path).glob(".report.sarif.*"))


def _finding(symbol: str, callees: tuple[str, ...] = ()) -> evaluate.Finding:
    return evaluate.Finding("EC101", "warning", "xen-pv", symbol, "", (),
                            evaluate.fingerprint("EC101", "xen-pv", symbol),
                            callees=callees)


def test_a_new_callee_that_was_a_root_of_its_own_is_not_new():
    """init_b was a finding of its own at the base; now init_a calls it: nothing new."""
    known = evaluate.known_from([_finding("init_a"), _finding("init_b")])
    [a] = evaluate.compare([_finding("init_a", ("init_b", "init_c"))], known)
    assert a.new_callees == ("init_c",)
    [a] = evaluate.compare([_finding("init_a", ("init_b",))], known)
    assert a.new_callees == () and evaluate.is_known(a, known)


def test_merged_knowledge_unions_callees_and_keeps_unrecorded_sets():
    fp = evaluate.fingerprint("EC101", "xen-pv", "init_a")
    one = {fp: evaluate.Known(frozenset({"x"}), suppressed=True)}
    merged = evaluate.merge_known(one, {fp: evaluate.Known(frozenset({"y"}))})
    assert merged[fp] == evaluate.Known(frozenset({"x", "y"}), suppressed=False)
    assert evaluate.merge_known(one, {fp: evaluate.Known(None, True)})[fp].callees is None
    assert one[fp].callees == {"x"}  # the inputs are left as they were
