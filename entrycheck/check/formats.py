"""Output formats of the check, each derived from the one JSON report: text, json, sarif, junit."""

from __future__ import annotations

import json
from collections.abc import Callable
from xml.etree import ElementTree as ET

from entrycheck.check.sarif import sarif
from entrycheck.render import counted


def text(report: dict) -> str:
    """The kernel's warning habit: one line per finding, then the chain."""
    lines = []
    for f in report["findings"]:
        where = f"{f['file']}:{f['line']}: " if f.get("file") else ""
        lines.append(f"{report['image']}: {where}{f['severity']}: entrycheck: {f['entry']}: "
                     f"{f['symbol']}: {f['message']} [{f['rule']}]")
        if f["chain"]:
            lines.append(f"  {f['reached_by']} reaches it: {' > '.join(f['chain'])}")
        if f.get("callees"):
            lines.append(f"  and through it {counted(len(f['callees']), 'function')}: "
                         f"{', '.join(f['callees'])}")
        if f.get("new_callees"):
            lines.append("  new below it since the base or baseline: "
                         + ", ".join(f["new_callees"]))
    s = report["summary"]
    lines += [f"{report['image']}: warning: entrycheck: {w}" for w in report.get("warnings", ())]
    known = "recorded in the baseline written now" if report.get("baseline_written") \
        else "known from base/baseline"
    lines.append(f"entrycheck: {counted(s['error'], 'error')}, "
                 f"{counted(s['warning'], 'warning')}, {counted(s['note'], 'note')} "
                 f"({s['known']} {known}, {s['suppressed']} allowed by rules)"
                 + ("" if report["inlined_visible"] else
                    "; no DWARF: inlined helpers are invisible, effects still match"))
    if report.get("baseline_written"):
        written = report["baseline_written"]
        lines.append(f"entrycheck: wrote {counted(written['findings'], 'finding')} to the "
                     f"baseline {written['path']}")
    return "\n".join(lines)


def as_json(report: dict) -> str:
    return json.dumps(report, indent=1)


def _failure_line(f: dict) -> str:
    """One finding as a JUnit failure line: symbol, message, chain, callees."""
    line = f"{f['symbol']}: {f['message']} ({' > '.join(f['chain'])})"
    if f.get("callees"):
        line += f"; callees: {', '.join(f['callees'])}"
    if f.get("new_callees"):
        line += f"; new since the base or baseline: {', '.join(f['new_callees'])}"
    return line


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
            failure.text = "\n".join(_failure_line(f) for f in found)
    suite.set("tests", str(len(cases)))
    suite.set("failures", str(len(by_case)))
    return ET.tostring(suites, encoding="unicode", xml_declaration=True)


FORMATTERS: dict[str, Callable[[dict], str]] = {
    "text": text, "json": as_json, "sarif": sarif, "junit": junit,
}
