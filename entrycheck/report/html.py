"""`entrycheck report`: one folder with index.html, report.json and SVG graphs of the entries.

Everything the HTML shows comes from report.json (format `entrycheck-report/1`), which is
embedded in the page; inline JavaScript builds the DOM from it, so the page needs no
network and no other file (the SVG graphs are inlined too). The files are written into
a temporary folder and moved into place by `folder.place`, which replaces only an
earlier report's own files (as its marker `.entrycheck-report` records them) and never
a file that is not the report's, with or without `force`.
"""

from __future__ import annotations

import json
import re
import shutil
import stat
import time
from collections.abc import Callable
from pathlib import Path

from entrycheck import __version__, queries, safeio
from entrycheck.analysis import Analysis
from entrycheck.binary.dwarf import DwarfIndex
from entrycheck.errors import EntrycheckError
from entrycheck.report import folder
from entrycheck.report.graphs import divergent_graph, render_svg, to_dot

FORMAT = folder.FORMAT
MARKER = folder.MARKER
SCOPE = "init"

Progress = Callable[[str, int, int], None]


def write_report(analysis: Analysis, out_dir: Path, *, force: bool = False,
                 findings: list[dict] | None = None, progress: Progress | None = None) -> dict:
    """Write the report folder; returns a JSON-able summary of what was written."""
    start = time.perf_counter()
    out_dir = Path(out_dir)
    check_target(out_dir, force)
    total = 3 + 2 * sum(1 for e in analysis.entries if e.name != analysis.reference)
    step = _stepper(progress, total)
    data = report_data(analysis, findings, step)

    def write(tmp: Path) -> None:
        svgs = _write_graphs(data, tmp, step)
        step("writing report.json and index.html")
        (tmp / "report.json").write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
        (tmp / "index.html").write_text(page(data, svgs))

    files = folder.place(out_dir, write, force)
    if progress:
        progress("done", total, total)
    return _summary(analysis, data, out_dir, files, time.perf_counter() - start)


def _stepper(progress: Progress | None, total: int) -> Callable[[str], None]:
    done = 0

    def step(name: str) -> None:
        nonlocal done
        if progress:
            progress(name, min(done, total), total)
        done += 1

    return step


def _summary(analysis: Analysis, data: dict, out_dir: Path, files: list[str],
             seconds: float) -> dict:
    graphs = {
        name: {"nodes": len(g["nodes"]), "edges": len(g["edges"]),
               "collapsed": sum(c["count"] for c in g["collapsed"]), "svg": g["svg"] is not None}
        for name, g in data["graphs"].items()
    }
    return {"format": queries.FORMAT, "command": "report", "image": analysis.image,
            "build_id": analysis.build_id, "output": str(out_dir), "files": files,
            "graphs": graphs, "graphviz": data["graphviz"],
            "findings": None if data["findings"] is None else len(data["findings"]),
            "seconds": round(seconds, 3)}


# -- the folder ----------------------------------------------------------------------


def check_target(out_dir: Path, force: bool) -> None:
    """Raise unless a report may be written to out_dir (checked again, under the folder's
    lock, when it is written): missing, empty, an earlier report, or `force` (the report
    is then written beside the foreign files, which are kept)."""
    out_dir = Path(out_dir)
    st = safeio.lstat(out_dir, "the report folder")
    if st is not None and not stat.S_ISDIR(st.st_mode):
        raise EntrycheckError(f"{safeio.shown(out_dir)} exists and is not a folder: not "
                              "overwriting")


def _safe(name: str) -> str:
    return re.sub(r"[^\w.+-]", "_", name)


def _write_graphs(data: dict, tmp: Path, step: Callable[[str], None]) -> dict[str, str]:
    """DOT files always, SVG when `dot` runs; returns entry -> SVG text."""
    (tmp / "graphs").mkdir()
    clusters = {n: f["file"] for n, f in data["functions"].items() if f.get("file")}
    svgs: dict[str, str] = {}
    notes = []
    for name, graph in data["graphs"].items():
        step(f"rendering the graph of {name}")
        dot_file = tmp / "graphs" / f"{_safe(name)}.dot"
        svg_file = dot_file.with_suffix(".svg")
        dot_file.write_text(to_dot(graph, clusters))
        graph["dot"] = str(dot_file.relative_to(tmp))
        problem = render_svg(dot_file, svg_file)
        if problem is None:
            graph["svg"] = str(svg_file.relative_to(tmp))
            svgs[name] = svg_file.read_text()
        elif problem not in notes:
            notes.append(problem)
    if notes:
        data["graphviz"]["note"] = "; ".join(notes) + ": the graphs are DOT files only"
    return svgs


# -- the data --------------------------------------------------------------------------


def report_data(analysis: Analysis, findings: list[dict] | None,
                step: Callable[[str], None] = lambda _: None) -> dict:
    """The report.json document (graph file names are filled in when they are written)."""
    reference = analysis.reference
    others = [e.name for e in analysis.entries if e.name != reference]
    step("reach matrix")
    scopes = {e.name: {s: {analysis.graph(e.name).name(a)
                           for a in queries.in_scope(analysis, analysis.graph(e.name), s)}
                       for s in ("init", "early")} for e in analysis.entries}
    skips = {}
    if any(e.name == reference for e in analysis.entries):
        skips = {name: queries.skip(analysis, name, reference, SCOPE) for name in others}
    graphs = {}
    for name in others:
        step(f"graph of {name}")
        if name in skips:
            graphs[name] = divergent_graph(analysis.graph(name), analysis.graph(reference),
                                           analysis.rules)
            graphs[name].update({"svg": None, "dot": None})
    data = {
        "format": FORMAT, "entrycheck_version": __version__, "image": analysis.image,
        "build_id": analysis.build_id, "bits": analysis.bits, "has_dwarf": None,
        "reference": reference, "scope": SCOPE, "functions_in_image": analysis.function_count,
        "entries": [_entry(analysis, e.name, scopes, skips) for e in analysis.entries],
        "matrix": _matrix(analysis, scopes),
        "skips": {n: _skip(s) for n, s in skips.items()},
        "findings": None if findings is None else [_finding(f) for f in findings],
        "graphs": graphs, "graphviz": {"dot": shutil.which("dot") is not None, "note": None},
    }
    step("source locations")
    data["functions"], data["dwarf_note"] = _functions(analysis, _shown(data))
    data["has_dwarf"] = not data["dwarf_note"]
    return data


def _entry(analysis: Analysis, name: str, scopes: dict, skips: dict) -> dict:
    graph = analysis.graph(name)
    out = analysis.entry(name).as_json()
    skip = skips.get(name)
    indirect = queries.indirect_figures(graph, set(graph.nodes))
    out.update({
        "root": graph.name(graph.root),
        "convergence": None if skip is None else skip["convergence"],
        "counts": {
            "init": len(scopes[name]["init"]), "early": len(scopes[name]["early"]),
            "all": len(graph.nodes), "indirect_resolved": indirect["resolved"],
            "indirect_unresolved": indirect["unresolved"],
            "skipped": None if skip is None else len(skip["skipped"]),
            "entry_only": None if skip is None else len(skip["entry_only"]),
        },
    })
    return out


def _matrix(analysis: Analysis, scopes: dict) -> dict:
    rows = sorted(set().union(*(s["init"] for s in scopes.values())))
    return {"scope": SCOPE, "entries": [e.name for e in analysis.entries],
            "rows": [{"function": f,
                      "reached_by": [e.name for e in analysis.entries
                                     if f in scopes[e.name]["init"]]} for f in rows]}


def _skip(result: dict) -> dict:
    keys = ("entry", "against", "scope", "convergence")
    return {**{k: result[k] for k in keys},
            "skipped": [{"function": s["name"], "chain": s["chain"]} for s in result["skipped"]],
            "entry_only": [s["name"] for s in result["entry_only"]],
            "whole_boot": result.get("whole_boot")}


def _finding(item: dict) -> dict:
    """A rules-engine finding, checked for the fields the report shows."""
    try:
        out = {"rule": str(item["rule"]), "severity": str(item["severity"]),
               "entry": str(item.get("entry") or ""), "symbol": str(item.get("symbol") or ""),
               "message": str(item["message"]), "chain": [str(c) for c in item.get("chain") or []],
               "fingerprint": str(item.get("fingerprint") or "")}
    except (KeyError, TypeError) as exc:
        raise EntrycheckError(f"finding without {exc}: {item!r:.200}") from None
    if out["severity"] not in ("error", "warning", "note"):
        raise EntrycheckError(f"finding {out['rule']}: unknown severity {out['severity']!r}")
    return out


def _shown(data: dict) -> set[str]:
    """Every function the page names."""
    names = {r["function"] for r in data["matrix"]["rows"]}
    for skip in data["skips"].values():
        names |= set(skip["convergence"]) | set(skip["entry_only"])
        for s in skip["skipped"]:
            names |= {s["function"], *s["chain"]}
    for graph in data["graphs"].values():
        names |= {n["name"] for n in graph["nodes"]}
    for f in data["findings"] or ():
        names |= {f["symbol"], *f["chain"]} - {""}
    names |= {e["root"] for e in data["entries"]}
    return names


_TREE_TOP = re.compile(r"^(?:.*?/)??((?:arch|block|certs|crypto|drivers|fs|include|init|io_uring|"
                       r"ipc|kernel|lib|mm|net|security|sound|virt)/.*)$")


def source_path(path: str) -> str:
    """A DWARF file name relative to the kernel tree when it can tell (Debian's build
    prefix `debian/build/build_amd64_none_cloud-amd64/` dropped)."""
    match = _TREE_TOP.match(path)
    return match.group(1) if match else path


def _functions(analysis: Analysis, names: set[str]) -> tuple[dict[str, dict], str | None]:
    """Name -> address, section, init, entries reaching it, and source file/line."""
    out: dict[str, dict] = {}
    by_name = {e.name: {n.name: n for n in analysis.graph(e.name).nodes.values()}
               for e in analysis.entries}
    for name in sorted(names):
        for entry in analysis.entries:
            node = by_name[entry.name].get(name)
            if node is not None:
                out.setdefault(name, {"address": f"{node.address:#x}",
                                      "section": node.section, "init": node.init,
                                      "reached_by": [], "file": None, "line": None})
                out[name]["reached_by"].append(entry.name)
    # Ask the file, not analysis.has_dwarf: the analysis cache is keyed by build-id, which
    # a vmlinux and its stripped copy share.
    index = DwarfIndex(analysis.image)
    try:
        if not index.available:
            return out, "no DWARF in the image: source locations are not shown"
        found = index.locations({n: int(f["address"], 16) for n, f in out.items()})
    except (EntrycheckError, OSError) as exc:
        return out, f"DWARF not readable: {exc}"
    finally:
        index.close()
    for name, loc in found.items():
        out[name].update({"file": source_path(loc.file), "line": loc.line})
    return out, None


# -- the page --------------------------------------------------------------------------


def page(data: dict, svgs: dict[str, str]) -> str:
    """index.html: the JSON document embedded, the SVGs as templates, inline CSS and JS."""
    payload = (json.dumps(data, sort_keys=True).replace("&", "\\u0026")
               .replace("<", "\\u003c").replace(">", "\\u003e"))
    templates = "".join(f'<template id="svg-{_safe(name)}">{_svg_body(svg)}</template>\n'
                        for name, svg in sorted(svgs.items()))
    title = f"entrycheck report: {Path(data['image']).name}"
    return (_PAGE.replace("__TITLE__", _html_escape(title))
            .replace("__TEMPLATES__", templates).replace("__DATA__", payload))


def _svg_body(svg: str) -> str:
    """The <svg> element of dot's output, without XML prolog, doctype and comments."""
    svg = re.sub(r"<!--.*?-->", "", svg[svg.find("<svg"):], flags=re.S)
    return svg.strip()


def _html_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:0;
 color:#1d2430;background:#f6f7f9}
header{background:#1f2d3d;color:#fff;padding:14px 24px}header h1{margin:0;font-size:20px}
header .sub{color:#b8c4d2;font-size:13px}
nav{padding:6px 24px;background:#e9edf2;border-bottom:1px solid #d5dbe3;position:sticky;top:0;
 z-index:2}nav a{margin-right:16px;color:#1f4e8c;text-decoration:none}
main{padding:8px 24px 40px;max-width:1500px}
section{background:#fff;border:1px solid #dde2e8;border-radius:6px;padding:10px 18px 16px;
 margin:16px 0}
h2{font-size:17px;margin:6px 0 10px}h3{font-size:15px;margin:16px 0 6px}
table{border-collapse:collapse;font-size:13px}th,td{border-bottom:1px solid #e6e9ee;
 padding:3px 10px;text-align:left;vertical-align:top}th{background:#f1f3f6;font-weight:600}
th.sort{cursor:pointer;user-select:none;white-space:nowrap}th.sort:hover{background:#e2e7ee}
td.yes{background:#d3f0d3;text-align:center;color:#17612a;font-weight:700}
td.no{text-align:center;color:#c0392b;background:#fbeaea}
td.absent{text-align:center;color:#9aa3ad}
#entries td:first-child{white-space:nowrap}
tr:target{outline:2px solid #f0a030;background:#fff4e0}
a.fn{color:#1f4e8c;text-decoration:none;font-family:ui-monospace,Menlo,Consolas,monospace}
a.fn:hover{text-decoration:underline}
.mono{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12.5px}
.muted{color:#6b7480}.chain .arrow{color:#8a939e;padding:0 3px}
.sev{border-radius:3px;padding:0 6px;font-size:12px;font-weight:600;color:#fff}
.sev.error{background:#c0392b}.sev.warning{background:#d68910}.sev.note{background:#5d6d7e}
.controls{margin:6px 0 8px;display:flex;gap:14px;align-items:center}
.controls input[type=search]{padding:4px 8px;width:260px;border:1px solid #b9c2cc;
 border-radius:4px}
.graph{overflow:auto;border:1px solid #e3e6ea;border-radius:4px;max-height:85vh;
 background:#fff}.graph.fit svg{max-width:100%;height:auto}
.legend span{display:inline-block;margin-right:14px}
.swatch{display:inline-block;width:14px;height:10px;border:1px solid #777;margin-right:4px}
#error{display:none;background:#c0392b;color:#fff;padding:8px 24px}
details summary{cursor:pointer;color:#1f4e8c}
"""

_JS = r"""
"use strict";
window.addEventListener("error", e => {
  const box = document.getElementById("error");
  box.style.display = "block"; box.textContent = "report error: " + e.message;
});
const D = JSON.parse(document.getElementById("report-data").textContent);
const F = D.functions;
function el(tag, attrs, ...kids) {
  const n = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "text") n.textContent = v; else if (k === "cls") n.className = v;
    else n.setAttribute(k, v === true ? "" : v);
  }
  for (const kid of kids.flat(Infinity)) if (kid !== null && kid !== undefined)
    n.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
  return n;
}
const fn = name => F[name] ? el("a", {cls: "fn", href: "#fn-" + name, text: name})
                           : el("span", {cls: "mono", text: name});
function chain(names) {
  const out = el("span", {cls: "chain"});
  names.forEach((n, i) => { if (i) out.append(el("span", {cls: "arrow", text: "→"}));
                            out.append(fn(n)); });
  return out;
}
const list = names => names.map((n, i) => [i ? ", " : "", fn(n)]);
function where(name) {
  const f = F[name]; if (!f) return "";
  return f.file ? f.file + (f.line ? ":" + f.line : "") : f.section;
}
function table(head, rows, attrs) {
  return el("table", attrs || {}, el("thead", {}, el("tr", {}, head.map(h => el("th", {text: h})))),
            el("tbody", {}, rows));
}
function section(id, title, ...kids) {
  document.querySelector("nav").append(el("a", {href: "#" + id, text: title}));
  document.querySelector("main").append(el("section", {id: id}, el("h2", {text: title}), kids));
}
function summary() {
  const dl = [["image", D.image], ["build-id", D.build_id || "none"], ["bits", D.bits],
              ["DWARF", D.has_dwarf ? "yes" : "no"], ["functions in image", D.functions_in_image],
              ["reference entry", D.reference], ["entrycheck", D.entrycheck_version]];
  const facts = table(["", ""], dl.map(([k, v]) => el("tr", {}, el("th", {text: k}),
                                                      el("td", {cls: "mono", text: v}))));
  facts.querySelector("thead").remove();
  const rows = D.entries.map(e => el("tr", {},
    el("td", {}, el("b", {text: e.name})), el("td", {}, fn(e.symbol)),
    el("td", {cls: "mono", text: e.address}), el("td", {text: e.mode + "-bit"}),
    el("td", {text: e.found.join(", ")}),
    el("td", {}, e.convergence === null ? el("span", {cls: "muted", text: "(reference)"})
                 : e.convergence.length ? list(e.convergence) : "none found"),
    ...["init", "early", "all"].map(k => el("td", {text: e.counts[k]})),
    el("td", {text: e.counts.skipped ?? "\u2013"}),
    el("td", {text: e.counts.entry_only ?? "\u2013"}),
    el("td", {text: e.counts.indirect_resolved + " / " + e.counts.indirect_unresolved})));
  const entries = table(["entry", "symbol", "address", "mode", "found by",
    "converges with " + D.reference + " at", "init", "boot path", "all reached",
    D.reference + " runs, entry skips", "entry only",
    "indirect resolved / unresolved (all reached)"],
    rows, {id: "entries"});
  const notes = [D.dwarf_note, D.graphviz.note].filter(Boolean)
    .map(t => el("p", {cls: "muted note", text: t}));
  section("summary", "Summary", facts, el("h3", {text: "Entries"}), entries, notes);
}
function findings() {
  let body;
  if (D.findings === null) body = el("p", {cls: "muted", id: "no-rules", text: "no rules run"});
  else if (!D.findings.length) body = el("p", {id: "no-findings", text: "no findings"});
  else body = table(["severity", "rule", "entry", "function", "message", "call chain"],
    D.findings.map(f => el("tr", {"data-fingerprint": f.fingerprint},
      el("td", {}, el("span", {cls: "sev " + f.severity, text: f.severity})),
      el("td", {cls: "mono", text: f.rule}), el("td", {text: f.entry}),
      el("td", {}, f.symbol ? fn(f.symbol) : ""), el("td", {text: f.message}),
      el("td", {}, chain(f.chain)))), {id: "findings-table"});
  section("findings", "Findings", body);
}
function sortable(t) {
  const tbody = t.querySelector("tbody"), heads = [...t.querySelectorAll("th")];
  heads.forEach((th, i) => {
    th.className = "sort"; th.title = "click to sort";
    th.addEventListener("click", () => {
      const dir = th.dataset.dir === "asc" ? "desc" : "asc";
      for (const h of heads) {
        delete h.dataset.dir; h.textContent = h.textContent.replace(/ [▲▼]$/, "");
      }
      th.dataset.dir = dir; th.textContent += dir === "asc" ? " ▲" : " ▼";
      const key = tr => i < 2 ? tr.cells[i].textContent
        : (tr.cells[i].className === "yes" ? "0" : "1") + tr.dataset.fn;
      const sign = dir === "asc" ? 1 : -1;
      tbody.append(...[...tbody.rows].sort((a, b) => key(a).localeCompare(key(b)) * sign));
    });
  });
}
function matrix() {
  const M = D.matrix, ents = M.entries;
  const rows = M.rows.map(r => el("tr", {"data-fn": r.function, id: "m-" + r.function},
    el("td", {}, fn(r.function)), el("td", {cls: "muted", text: where(r.function)}),
    ents.map(e => r.reached_by.includes(e)
      ? el("td", {cls: "yes", "data-entry": e, text: "✓"})
      : el("td", {cls: "no", "data-entry": e, text: "\u2013"}))));
  const t = table(["function", "source", ...ents], rows, {id: "matrix-table"});
  const tbody = t.querySelector("tbody"), count = el("span", {cls: "muted", id: "matrix-count"});
  const search = el("input", {type: "search", id: "search", placeholder: "filter functions…"});
  const differ = el("input", {type: "checkbox", id: "differ"});
  function apply() {
    const q = search.value.trim().toLowerCase(); let shown = 0;
    for (const tr of tbody.rows) {
      const text = (tr.dataset.fn + " " + tr.cells[1].textContent).toLowerCase();
      const some = tr.querySelectorAll("td.no").length > 0;
      tr.hidden = !(text.includes(q) && (!differ.checked || some));
      if (!tr.hidden) shown++;
    }
    count.textContent = shown + " of " + tbody.rows.length + " functions";
  }
  sortable(t);
  search.addEventListener("input", apply); differ.addEventListener("change", apply);
  search.value = new URLSearchParams(location.search).get("q") || "";
  apply();
  section("matrix", "Reach matrix", el("p", {cls: "muted", text: "Init functions on each "
    + "entry's boot path (scope " + M.scope + ": .init.text and head code). Click a column "
    + "to sort; ?q=TEXT in the address pre-fills the filter."}),
    el("div", {cls: "controls"}, search,
       el("label", {}, differ, " only where entries differ"), count), t);
}
function skipOf(name, s) {
  const n = s.skipped.length;
  const out = [el("h3", {id: "skip-" + name, text: name + " vs " + s.against}),
    el("p", {}, "Paths converge at ", s.convergence.length ? list(s.convergence) : "no function",
      ". " + s.against + " runs " + n + " init functions before convergence that " + name
      + " never reaches" + (n ? ":" : "."))];
  if (n) out.push(table(["function", "source", "chain from " + s.against],
    s.skipped.map(k => el("tr", {"data-fn": k.function}, el("td", {}, fn(k.function)),
      el("td", {cls: "muted", text: where(k.function)}), el("td", {}, chain(k.chain)))),
    {cls: "skip-table", "data-entry": name}));
  if (s.entry_only.length) out.push(el("p", {}, name + " alone reaches before convergence: ",
    list(s.entry_only)));
  const w = s.whole_boot;
  if (!w) return out;
  const targets = t => t ? Object.entries(t)
    .map(([e, fs]) => e + ": " + (fs.join(", ") || "\u2013")).join("; ") : "";
  out.push(el("h4", {text: "Whole boot, by where the graphs part"}),
    el("p", {cls: "muted", text: s.against + " alone reaches " + w.reference_only + ", " + name
      + " alone " + w.entry_only + " functions (" + (w.with_faults ? "with the fault layer"
      : "normal flow; the fault layer apart") + ")."}),
    table(["divergence point", "targets", s.against + " only", name + " only"],
      w.groups.map(g => el("tr", {},
        el("td", {text: g.point.kind + " " + g.point.name}), el("td", {text: targets(g.targets)}),
        el("td", {}, list(g.reference_only)), el("td", {}, list(g.entry_only)))),
      {cls: "divergence-table", "data-entry": name}));
  if (w.hooks.length) out.push(el("h4", {text: "Hooks whose targets differ"}),
    table(["slot", name, s.against],
      w.hooks.map(h => el("tr", {}, el("td", {text: h.slot}),
        el("td", {text: (h.targets[name] || []).join(", ") || "\u2013"}),
        el("td", {text: (h.targets[s.against] || []).join(", ") || "\u2013"}))),
      {cls: "hook-table", "data-entry": name}));
  return out;
}
function skips() {
  const kids = D.entries.map(e => e.name).filter(n => D.skips[n]).map(n => skipOf(n, D.skips[n]));
  section("skips", "What each entry skips",
    kids.length ? kids : el("p", {cls: "muted", text: "no entry besides the reference"}));
}
function graphOf(name, g) {
  const hidden = g.collapsed.reduce((n, c) => n + c.count, 0);
  const files = [g.svg ? el("a", {href: g.svg, text: g.svg}) : null, g.svg ? ", " : null,
                 el("a", {href: g.dot, text: g.dot})];
  const out = [el("h3", {id: "graph-" + name, text: name + " vs " + g.reference}),
    el("p", {cls: "muted"}, g.region + " functions before convergence on either side; shown: "
      + g.nodes.length + " nodes, " + g.edges.length + " edges" + (hidden ? "; " + hidden
      + " functions more than " + g.max_depth + " calls from a root (not init code) collapsed"
      : "") + ". Files: ", files)];
  const swatches = [["#cfe2ff", g.reference + " only"], ["#ffd8a8", name + " only"],
                    ["#d3f0d3", "both"]];
  out.push(el("p", {cls: "legend"}, swatches.map(([c, t]) =>
    el("span", {}, el("span", {cls: "swatch", style: "background:" + c}), t)),
    el("span", {text: "edges: call solid, jump dashed, fallthrough dotted, far bold, "
      + "indirect coloured (labelled with the slot); click a node for its row"})));
  const tpl = document.getElementById("svg-" + name.replace(/[^\w.+-]/g, "_"));
  if (tpl) {
    const box = el("div", {cls: "graph", "data-entry": name}, tpl.content.cloneNode(true));
    const toggle = el("button", {type: "button", text: "fit to width / actual size"});
    toggle.addEventListener("click", () => box.classList.toggle("fit"));
    out.push(toggle, box);
  } else out.push(el("p", {cls: "no-svg", text: "No SVG: " + (D.graphviz.note || "dot failed")
    + ". Render " + g.dot + " with: dot -Tsvg -O " + g.dot}));
  if (g.collapsed.length) out.push(el("details", {},
    el("summary", {text: "collapsed functions (" + hidden + ")"}),
    table(["under", "count", "functions"], g.collapsed.map(c => el("tr", {},
      el("td", {}, fn(c.under)), el("td", {text: c.count}),
      el("td", {cls: "mono", text: c.functions.join(", ")}))))));
  return out;
}
function graphs() {
  const kids = D.entries.map(e => e.name).filter(n => D.graphs[n])
    .map(n => graphOf(n, D.graphs[n]));
  section("graphs", "Divergence graphs",
    kids.length ? kids : el("p", {cls: "muted", text: "no graphs"}));
  for (const box of document.querySelectorAll(".graph")) {  // small graphs fit the page
    const svg = box.querySelector("svg");
    if (svg && svg.width.baseVal.value <= 1.6 * box.clientWidth) box.classList.add("fit");
  }
}
function functions() {
  const ents = D.entries.map(e => e.name);
  const rows = Object.keys(F).sort().map(n => el("tr", {id: "fn-" + n},
    el("td", {cls: "mono", text: n}), el("td", {cls: "mono", text: F[n].address}),
    el("td", {text: F[n].section}), el("td", {cls: "mono", text: F[n].file ? where(n) : "\u2013"}),
    el("td", {text: F[n].init ? "yes" : ""}),
    ents.map(e => F[n].reached_by.includes(e) ? el("td", {cls: "yes", text: "✓"})
                                               : el("td", {cls: "absent", text: "\u2013"}))));
  section("functions", "Functions", el("p", {cls: "muted", text: "Every function named in this "
    + "report; \"reached by\": anywhere in the entry's graph."}),
    table(["function", "address", "section", "source", "init",
           ...ents.map(e => "reached by " + e)], rows, {id: "functions-table"}));
}
summary(); findings(); matrix(); skips(); graphs(); functions();
if (location.hash) {
  const target = document.getElementById(decodeURIComponent(location.hash.slice(1)));
  if (target) target.scrollIntoView();
}
document.body.dataset.rendered = "ok";
"""

_PAGE = ("""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy"
 content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'">
<title>__TITLE__</title><style>""" + _CSS + """</style></head>
<body><div id="error"></div>
<header><h1>__TITLE__</h1>
<div class="sub">entrycheck: boot entry paths of a Linux x86 kernel</div></header>
<nav></nav><main></main>
__TEMPLATES__<script type="application/json" id="report-data">__DATA__</script>
<script>""" + _JS + """</script>
</body></html>
""")
