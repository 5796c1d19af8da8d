"""Plain-text rendering of the query results (the JSON dicts of entrycheck.queries)."""

from __future__ import annotations

from collections.abc import Callable


def counted(n: int, noun: str) -> str:
    """`1 error`, `2 errors`."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def summary_lines(summary: dict) -> list[str]:
    """Text form of a report's summary."""
    out = [f"wrote {summary['output']}/index.html ({len(summary['files'])} files) in "
           f"{summary['seconds']:.1f} s"]
    for name, g in summary["graphs"].items():
        hidden = f", {g['collapsed']} functions collapsed" if g["collapsed"] else ""
        out.append(f"  graph {name}: {g['nodes']} nodes, {g['edges']} edges{hidden}"
                   f"{'' if g['svg'] else ' (DOT only)'}")
    if summary["graphviz"]["note"]:
        out.append(f"  note: {summary['graphviz']['note']}")
    return out


def _lines_entries(r: dict) -> list[str]:
    out = [f"{'ENTRY':<16} {'SYMBOL':<24} {'ADDRESS':<20} MODE  FOUND BY"]
    for e in r["entries"]:
        out.append(f"{e['name']:<16} {e['symbol']:<24} {e['address']:<20} {e['mode']:<5} "
                   f"{', '.join(e['found'])}")
        if e.get("warning"):
            out.append(f"  warning: {e['warning']}")
    if not r["entries"]:
        out.append("(no catalogued entry found; add one with --entry NAME=SYMBOL[@32])")
    return out


def _lines_reach(r: dict) -> list[str]:
    ind = r["indirect"]
    share = "n/a" if ind["share_resolved"] is None else f"{ind['share_resolved']:.0%}"
    out = [f"{r['entry']} reaches {counted(len(r['reached']), 'function')} in scope {r['scope']} "
           f"({r['total_reached']} in its {r['graph']} graph); indirect transfers resolved "
           f"{ind['resolved']}, unresolved {ind['unresolved']} ({share} resolved)"]
    out += [f"  {f['name']:<40} {f['section']:<14} {f['address']}" for f in r["reached"]]
    if r["unresolved_by_reason"]:
        out.append("unresolved sites by reason (--json lists each):")
        out += [f"  {n:>6}  {reason}" for reason, n in r["unresolved_by_reason"].items()]
    return out


def _lines_skip(r: dict) -> list[str]:
    if r.get("show") == "hooks":
        return _lines_hooks(r["whole_boot"]["hooks"], r["entry"], r["against"])
    conv = ", ".join(r["convergence"]) or "none found"
    out = [f"{r['entry']} vs {r['against']}: paths converge at {conv}",
           f"{r['against']} reaches {counted(len(r['skipped']), 'function')} before "
           f"convergence that {r['entry']} never reaches (scope {r['scope']}):"]
    for f in r["skipped"]:
        out.append(f"  {f['name']:<40} {f['section']:<12} via {' > '.join(f['chain'])}")
    if r["entry_only"]:
        out.append(f"{r['entry']} alone reaches {counted(len(r['entry_only']), 'function')} before "
                   f"convergence:")
        out += [f"  {f['name']:<40} {f['section']}" for f in r["entry_only"]]
    if "whole_boot" in r:
        out += _lines_whole_boot(r["whole_boot"], r["entry"], r["against"])
    if "dynamic" in r:
        out += _lines_dynamic(r["dynamic"], r["entry"], r["against"])
    return out


def _lines_whole_boot(w: dict, entry: str, against: str, limit: int = 12) -> list[str]:
    faults = "with the fault layer" if w["with_faults"] else "normal flow, faults apart"
    out = [f"whole boot ({faults}): {against} alone reaches {w['reference_only']}, {entry} "
           f"alone {w['entry_only']}, by where the graphs part:"]
    for g in w["groups"]:
        p = g["point"]
        head = {"entry": f"{p['name']}'s own path", "hook": f"hook {p['name']}",
                "fact": f"boot fact {p['name']}", "edge": f"edge {p['name']}"}[p["kind"]]
        if "targets" in g:
            head += ": " + "; ".join(f"{e} {', '.join(t) or '-'}"
                                     for e, t in g["targets"].items())
        out.append(f"  {head}")
        for side, who in (("reference_only", against), ("entry_only", entry)):
            names = g[side]
            if names:
                more = f" (+{len(names) - limit} more)" if len(names) > limit else ""
                out.append(f"    {who} only: {', '.join(names[:limit])}{more}")
    return [*out, f"{counted(len(w['hooks']), 'hook')} with different targets: --hooks"]


def _lines_hooks(hooks: list[dict], entry: str, against: str) -> list[str]:
    out = [f"{counted(len(hooks), 'hook')} whose targets differ between {entry} and {against}"
           " (slot: targets per entry):"]
    for h in hooks:
        out.append(f"  {h['slot']}")
        out += [f"    {e:<10} {', '.join(t) or '-'}" for e, t in h["targets"].items()]
    return out


def _lines_dynamic(d: dict, entry: str, against: str) -> list[str]:
    def names(items: list[str]) -> str:
        return ", ".join(items) or "none"

    return [
        f"real boots until start_kernel ({against}: {d['reference_trace']['functions']} "
        f"functions, {entry}: {d['entry_trace']['functions']}):",
        f"  ran on {against} only: {names(d['reference_only'])}",
        f"  ran on {entry} only: {names(d['entry_only'])}",
        f"  statically skipped and seen running on {against} only: "
        f"{names(d['static_skipped_that_ran'])}",
        f"  statically skipped, not run in this boot: {names(d['static_skipped_not_run'])}",
        f"  ran on {against} only, not in the static list (outside the scope or shared "
        f"later): {names(d['ran_differently_not_in_static'])}",
    ]


def _lines_why(r: dict) -> list[str]:
    if not r["reached"]:
        return _lines_not_reached(r)
    out = [f"{r['entry']} reaches {r['function']} in {counted(len(r['chain']) - 1, 'step')}:"]
    for link in r["links"]:
        edge = link.get("edge")
        if edge is None:
            out.append(f"  {link['function']} (entry)")
            continue
        via = f" via {edge['via']}" if edge.get("via") else ""
        once = f"; once {edge['condition']}" if edge.get("condition") else ""
        out.append(f"  -> {link['function']:<36} [{edge['kind']}{via}{once}] at "
                   f"{edge['site']}: {edge['instruction']}")
    return out


def _lines_not_reached(r: dict) -> list[str]:
    out = [f"{r['entry']} does not reach {r['function']}."]
    if not r["others"]:
        out.append("  no other entry reaches it either")
    for other in r["others"]:
        out.append(f"  {other['entry']} does: {' > '.join(other['chain'])}")
        if "parts_at" not in other:
            out.append(f"    on {other['entry']}'s own path: {r['entry']} reaches none of "
                       f"these functions")
            continue
        edge = other["edge"]
        via = f" via {edge['via']}" if edge.get("via") else ""
        cut = f"; {r['entry']}'s edge is cut: {other['cut_by']}" if other.get("cut_by") else ""
        out.append(f"    parts from {r['entry']} at {other['parts_at']} [{edge['kind']}{via}]"
                   f" > {' > '.join(other['then'])}{cut}")
    return out


def _lines_validate(r: dict) -> list[str]:
    share = "n/a" if r["share_inside"] is None else f"{r['share_inside']:.1%}"
    t = r["trace"]
    out = [f"{r['entry']}: {r['inside']} of {counted(t['functions'], 'function')} traced until "
           f"{t['until']} are in the static reach set ({share})"]
    p = r["precision"]
    out.append(f"  precision: the static normal-flow set ({p['scope']}) holds "
               f"{p['static_normal_flow']} functions, {p['ratio']}x the traced set")
    if not r["same_build"]:
        out.append(f"  warning: trace build-id {t['build_id']} differs from the image's")
    for m in r["missing"]:
        out.append(f"  missing {m['function']:<40} ran after {m['after']}: lost at {m['lost']}")
    return out


def _lines_trace(r: dict) -> list[str]:
    return [f"traced {counted(r['functions'], 'vmlinux function')} of a {r['entry']} boot until "
            f"{r['until']} in {r['seconds']:.1f} s: wrote {r['output']}"]


def _lines_crosscheck(r: dict) -> list[str]:
    if r["against"] == "objdump":
        reasons = ", ".join(f"{k} {v}" for k, v in r["by_reason"].items())
        out = [f"decoder vs objdump -d: {r['agreeing']} of {r['functions']} sized functions "
               f"agree on instruction boundaries ({r['instructions']} instructions; "
               f"disagreements: {reasons}; objdump {r['seconds_objdump']:.1f} s, decoder "
               f"{r['seconds_decoder']:.1f} s)"]
        out += [f"  {d['function']} at {d['first']}: {d['reason']} (ours: {d['ours']!r}, "
                f"objdump: {d['objdump']!r})" for d in r["disagreements"]]
        return out
    out = [f"fast decoder vs angr: {r['agreeing']} of {counted(r['functions'], 'function')} "
           f"agree on direct call/jump targets (angr {r['seconds_angr']:.1f} s, fast "
           f"{r['seconds_fast']:.2f} s)"]
    for m in r["mismatches"]:
        out.append(f"  {m['function']}: only fast {m['only_fast']}, only angr {m['only_angr']}")
    return out


RENDERERS: dict[str, Callable[[dict], list[str]]] = {
    "entries": _lines_entries,
    "reach": _lines_reach,
    "skip": _lines_skip,
    "why": _lines_why,
    "validate": _lines_validate,
    "trace": _lines_trace,
    "crosscheck": _lines_crosscheck,
    "report": summary_lines,
}


def render(result: dict) -> str:
    """The text form of a query result."""
    build = f" (build-id {result['build_id']})" if result["build_id"] else ""
    head = f"{result['image']}{build}"
    return "\n".join([head, *RENDERERS[result["command"]](result)])
