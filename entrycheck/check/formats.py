"""Output formats of the check, each derived from the one JSON report: text, json, sarif, junit."""

from __future__ import annotations

import json
from collections.abc import Callable
from xml.etree import ElementTree as ET

from entrycheck import __version__

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_LEVEL = {"error": "error", "warning": "warning", "note": "note"}


def counted(n: int, noun: str) -> str:
    """`1 error`, `2 errors`."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def text(report: dict) -> str:
    """The kernel's warning habit: one line per finding, then the chain."""
    lines = []
    for f in report["findings"]:
        where = f"{f['file']}:{f['line']}: " if f.get("file") else ""
        lines.append(f"{report['image']}: {where}{f['severity']}: entrycheck: {f['entry']}: "
                     f"{f['symbol']}: {f['message']} [{f['rule']}]")
        if f["chain"]:
            lines.append(f"  {f['reached_by']} reaches it: {' > '.join(f['chain'])}")
    s = report["summary"]
    lines += [f"{report['image']}: warning: entrycheck: {w}" for w in report.get("warnings", ())]
    lines.append(f"entrycheck: {counted(s['error'], 'error')}, "
                 f"{counted(s['warning'], 'warning')}, {counted(s['note'], 'note')} "
                 f"({s['known']} known from base/baseline, {s['suppressed']} allowed by rules)"
                 + ("" if report["inlined_visible"] else
                    "; no DWARF: inlined helpers are invisible, effects still match"))
    if report.get("baseline_written"):
        written = report["baseline_written"]
        lines.append(f"entrycheck: wrote {counted(written['findings'], 'finding')} to the "
                     f"baseline {written['path']}")
    return "\n".join(lines)


def as_json(report: dict) -> str:
    return json.dumps(report, indent=1)


def sarif(report: dict) -> str:
    """SARIF 2.1.0: every rule listed, fingerprints, the chain as a code flow."""
    rules = report["rules"]
    index = {r["id"]: i for i, r in enumerate(rules)}
    results = [_sarif_result(f, index, report) for f in report["findings"]]
    results += [_sarif_result(f, index, report) | {"suppressions": [
        {"kind": "inSource", "justification": f["suppressed"]}]} for f in report["suppressed"]]
    doc = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "entrycheck",
                "version": __version__,
                "informationUri": "https://www.kernel.org/doc/html/latest/arch/x86/boot.html",
                "rules": [_sarif_rule(r) for r in rules],
            }},
            "artifacts": [{"location": {"uri": _uri(report["image"])}}],
            "results": results,
            "properties": {"build_id": report["build_id"], "base": report["base"]},
        }],
    }
    return json.dumps(doc, indent=1)


def _sarif_rule(rule: dict) -> dict:
    out = {
        "id": rule["id"],
        "name": rule["id"],
        "shortDescription": {"text": rule["title"]},
        "fullDescription": {"text": rule["message"]},
        "defaultConfiguration": {"level": _LEVEL[rule["severity"]]},
    }
    if rule["references"]:
        out["help"] = {"text": "References: " + "; ".join(rule["references"])}
    return out


def _sarif_result(f: dict, index: dict[str, int], report: dict) -> dict:
    logical = {"name": f["symbol"], "kind": "function"}
    location: dict = {"logicalLocations": [logical]}
    if f.get("file"):
        region = {"startLine": f["line"]} if f.get("line") else {}
        location["physicalLocation"] = {"artifactLocation": {"uri": _uri(f["file"])},
                                        **({"region": region} if region else {})}
    else:
        location["physicalLocation"] = {"artifactLocation": {"uri": _uri(report["image"])}}
    result = {
        "ruleId": f["rule"],
        "ruleIndex": index[f["rule"]],
        "level": _LEVEL[f["severity"]],
        "message": {"text": f"{f['entry']}: {f['symbol']}: {f['message']}"},
        "locations": [location],
        "partialFingerprints": {"entrycheck/v1": f["fingerprint"]},
        "properties": {"entry": f["entry"]},
    }
    if f["chain"]:
        steps = [{"location": {"logicalLocations": [{"name": name, "kind": "function"}],
                               "message": {"text": name}}} for name in f["chain"]]
        result["codeFlows"] = [{"message": {"text": "why the reference entry reaches it"},
                                "threadFlows": [{"locations": steps}]}]
    return result


def _uri(path: str) -> str:
    return "file://" + path if path.startswith("/") else path


def junit(report: dict) -> str:
    """JUnit XML: a test case per rule and entry, failed by its findings."""
    suites = ET.Element("testsuites", name="entrycheck")
    suite = ET.SubElement(suites, "testsuite", name=f"entrycheck {report['image']}")
    by_case: dict[tuple[str, str], list[dict]] = {}
    for f in report["findings"]:
        by_case.setdefault((f["rule"], f["entry"]), []).append(f)
    cases = [(r["id"], e) for r in report["rules"] for e in report["entries"]]
    for rule, entry in cases:
        case = ET.SubElement(suite, "testcase", classname=f"entrycheck.{rule}", name=entry)
        found = by_case.get((rule, entry), [])
        if found:
            failure = ET.SubElement(case, "failure", message=counted(len(found), "finding"),
                                    type=found[0]["severity"])
            failure.text = "\n".join(f"{f['symbol']}: {f['message']} ({' > '.join(f['chain'])})"
                                     for f in found)
    suite.set("tests", str(len(cases)))
    suite.set("failures", str(len(by_case)))
    return ET.tostring(suites, encoding="unicode", xml_declaration=True)


FORMATTERS: dict[str, Callable[[dict], str]] = {
    "text": text, "json": as_json, "sarif": sarif, "junit": junit,
}
