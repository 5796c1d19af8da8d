"""SARIF 2.1.0 for code scanning, derived from the check's JSON report.

What GitHub's ingestion and Microsoft's multitool (`--rule-kind "Gh;Sarif"`) ask for:
every rule with a friendly name unlike its id, help text and a help URI (its section of
rules/README.md); every result with a physical location and a region; source files as
URIs relative to `%SRCROOT%` (the kernel tree: `--source-root`, by default the build
directory DWARF names), so a code-scanning view maps them into the repository. The boot
chain is a code flow, allowed findings are suppressions, fingerprints never hold addresses.
"""

from __future__ import annotations

import json
import re
from pathlib import Path, PurePosixPath
from urllib.parse import quote

from entrycheck import __version__
from entrycheck.check import RULES_URL

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SRCROOT = "%SRCROOT%"
_LEVEL = {"error": "error", "warning": "warning", "note": "note"}


def sarif(report: dict) -> str:
    """The report as a SARIF 2.1.0 log with one run."""
    rules = report["rules"]
    index = {r["id"]: i for i, r in enumerate(rules)}
    roots = [r for r in report.get("source_roots") or () if r]
    results = [_result(f, index, report, roots) for f in report["findings"]]
    results += [_result(f, index, report, roots) | {"suppressions": [
        {"kind": "inSource", "status": "accepted", "justification": f["suppressed"]}]}
        for f in report["suppressed"]]
    run: dict = {
        "tool": {"driver": {
            "name": "entrycheck",
            "version": __version__,
            "semanticVersion": __version__,
            "informationUri": report.get("rules_url") or RULES_URL,
            "rules": [_rule(r, report.get("rules_url") or RULES_URL) for r in rules],
        }},
        "invocations": [_invocation(report)],
        "originalUriBaseIds": {SRCROOT: _base(roots)},
        "artifacts": [{"location": {"uri": _file_uri(report["image"])},
                       "roles": ["analysisTarget"]}],
        "results": results,
        "properties": {"build_id": report["build_id"], "base": report["base"]},
    }
    return json.dumps({"$schema": SCHEMA, "version": "2.1.0", "runs": [run]}, indent=1)


def _rule(rule: dict, rules_url: str) -> dict:
    return {
        "id": rule["id"],
        "name": _friendly(rule["title"]) or f"Rule{rule['id']}",
        "shortDescription": {"text": _sentence(rule["title"])},
        "fullDescription": {"text": _sentence(rule["message"])},
        "help": {"text": _help_text(rule), "markdown": _help_markdown(rule)},
        "helpUri": rule.get("help_uri") or f"{rules_url}#{rule['id'].lower()}",
        "defaultConfiguration": {"level": _LEVEL[rule["severity"]]},
        "properties": {"tags": ["boot", "x86"]},
    }


def _friendly(title: str) -> str:
    """`CR4 shadow initialised on every entry` -> `Cr4ShadowInitialisedOnEveryEntry`."""
    return "".join(w[:1].upper() + w[1:].lower() for w in re.findall(r"[A-Za-z0-9]+", title))


def _sentence(text: str) -> str:
    text = text.strip()
    return text if text.endswith((".", "!", "?")) else text + "."


def _help_text(rule: dict) -> str:
    parts = [_sentence(rule["title"])]
    if rule.get("help"):
        parts.append(rule["help"].strip())
    parts.append(f"Finding: {_sentence(rule['message'])}")
    if rule["references"]:
        parts.append("References: " + "; ".join(rule["references"]) + ".")
    allowed = _allowed(rule)
    if allowed:
        parts.append("Allowed: " + "; ".join(f"{k}: {v}" for k, v in allowed.items()) + ".")
    return "\n".join(parts)


def _help_markdown(rule: dict) -> str:
    lines = [f"**{rule['id']}**: {_sentence(rule['title'])}", ""]
    if rule.get("help"):
        lines += [rule["help"].strip(), ""]
    lines.append(f"Finding: {_sentence(rule['message'])}")
    if rule["references"]:
        lines += ["", "References:", *(f"- {r}" for r in rule["references"])]
    allowed = _allowed(rule)
    if allowed:
        lines += ["", "Allowed:", *(f"- `{k}`: {v}" for k, v in allowed.items())]
    return "\n".join(lines)


def _allowed(rule: dict) -> dict[str, str]:
    """What a rule allows, with the reasons: entries, functions, roots per entry."""
    out = {**rule.get("allow", {}), **rule.get("allow_functions", {})}
    for entry, roots in (rule.get("allow_roots") or {}).items():
        out.update({f"{entry} {name}": reason for name, reason in roots.items()})
    return out


def _invocation(report: dict) -> dict:
    out: dict = {"executionSuccessful": True}
    if report.get("warnings"):
        out["toolExecutionNotifications"] = [
            {"level": "warning", "message": {"text": _sentence(w)}} for w in report["warnings"]]
    return out


def _result(f: dict, index: dict[str, int], report: dict, roots: list[str]) -> dict:
    if f.get("file"):
        artifact = _source_location(f["file"], roots)
        region = {"startLine": f["line"] or 1, "startColumn": 1}
    else:  # no DWARF: the finding is about the image as a whole
        artifact = {"uri": _file_uri(report["image"])}
        region = {"startLine": 1, "startColumn": 1}
    location = {"physicalLocation": {"artifactLocation": artifact, "region": region},
                "logicalLocations": [{"name": f["symbol"], "kind": "function"}]}
    result = {
        "ruleId": f["rule"],
        "ruleIndex": index[f["rule"]],
        "level": _LEVEL[f["severity"]],
        "message": {"text": _sentence(f"{f['entry']}: {f['symbol']}: {f['message']}")},
        "locations": [location],
        "partialFingerprints": {"entrycheck/v1": f["fingerprint"]},
        "properties": {"entry": f["entry"], "callees": list(f.get("callees") or ()),
                       "new_callees": list(f.get("new_callees") or ())},
    }
    if f["chain"]:
        steps = [{"location": {"logicalLocations": [{"name": name, "kind": "function"}],
                               "message": {"text": name}}} for name in f["chain"]]
        result["codeFlows"] = [{"message": {"text": f"How {f['reached_by']} reaches it."},
                                "threadFlows": [{"locations": steps}]}]
    return result


def _source_location(file: str, roots: list[str]) -> dict:
    """A source file as a URI under %SRCROOT% when it lies under one of the roots (or is
    relative and no root applies), else as an absolute file URI."""
    path = PurePosixPath(file)
    for root in roots:
        base = PurePosixPath(root)
        if str(base) in ("", "."):
            continue
        try:
            rel = path.relative_to(base)
        except ValueError:
            continue
        return {"uri": quote(str(rel)), "uriBaseId": SRCROOT}
    if path.is_absolute():
        return {"uri": _file_uri(file)}
    return {"uri": quote(str(path)), "uriBaseId": SRCROOT}


def _base(roots: list[str]) -> dict:
    """%SRCROOT%: an absolute source root as a file URI, a relative one described."""
    if roots and roots[0].startswith("/"):
        return {"uri": Path(roots[0]).as_uri().rstrip("/") + "/"}
    where = f" (the build named it {roots[0]})" if roots else ""
    return {"description": {"text": f"The root of the kernel source tree{where}."}}


def _file_uri(path: str) -> str:
    return Path(path).resolve().as_uri() if path else "file:///"
