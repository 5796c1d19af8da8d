"""Graphs of where an entry's boot path diverges from the reference's, as DOT and SVG.

Per entry E (not the reference), the graph holds what each of the two boot paths reaches
before the convergence points, plus those points: the divergent region. Nodes are
coloured by which boot paths reach them, edges styled by kind, clusters are sections (or
source files with DWARF). On a real kernel the reference's region holds well over a
thousand functions, so the graph keeps the nodes within `max_depth` of a root, the
convergence points and the region's init functions (with the chains to them), and
collapses the rest into one "N more functions" node under the last kept function.
"""

from __future__ import annotations

import shutil
import subprocess
from collections import deque
from collections.abc import Iterable
from pathlib import Path

import networkx as nx

from entrycheck.graph import EntryGraph
from entrycheck.knowledge import Knowledge
from entrycheck.paths import boot_path, diverge

MAX_DEPTH = 4
MIN_COLLAPSE = 3  # fewer hidden functions than this under one node: show them instead
DOT_TIMEOUT = 120

# Node fill per side ("ref": the reference only, "entry": the entry only, "both").
FILL = {"ref": "#cfe2ff", "entry": "#ffd8a8", "both": "#d3f0d3"}
# Edge look per kind: (style, colour).
EDGE_STYLE = {
    "call": ("solid", "#333333"),
    "jump": ("dashed", "#333333"),
    "fallthrough": ("dotted", "#333333"),
    "far": ("bold", "#333333"),
    "indirect-slot": ("solid", "#7b3fb5"),
    "indirect-register": ("solid", "#0f8a8a"),
    "indirect-ops": ("solid", "#c0392b"),
    "exception": ("dashed", "#a0522d"),
}


def region(graph: EntryGraph, path: set[str], joins: Iterable[str]) -> dict[str, int]:
    """Function -> depth from the root, for what the boot path `path` reaches before the
    join points (the joins included, not expanded; what the joins reach excluded)."""
    joins = set(joins)
    g = graph.graph.subgraph(path)
    after: set[str] = set()
    for join in joins:
        if join in g:
            after |= nx.descendants(g, join)
    depth = {graph.root: 0}
    queue = deque([graph.root])
    while queue:
        node = queue.popleft()
        if node in joins and node != graph.root:
            continue
        for succ in g.successors(node):
            if succ not in depth:
                depth[succ] = depth[node] + 1
                queue.append(succ)
    return {n: d for n, d in depth.items() if n not in after - joins}


def divergent_graph(entry: EntryGraph, reference: EntryGraph, knowledge: Knowledge,
                    max_depth: int = MAX_DEPTH) -> dict:
    """The JSON form of the divergent region of `entry` against `reference`: nodes (with
    side, depth, convergence flag), edges (kind, via) and what was collapsed."""
    div = diverge(entry, reference, knowledge)
    own, ref = boot_path(entry, knowledge), boot_path(reference, knowledge)
    parts = [(entry, region(entry, own, div.convergence)),
             (reference, region(reference, ref, div.convergence))]
    depth: dict[str, int] = {}
    for _, part in parts:
        for name, d in part.items():
            depth[name] = min(d, depth.get(name, d))
    merged = _merged(parts)
    parent = _bfs_parents(merged, [entry.root, reference.root])
    keep = _kept(merged, depth, parent, set(div.convergence), max_depth)
    collapsed = _collapsed(depth, parent, keep)
    small = [c for c in collapsed if c["count"] < MIN_COLLAPSE]
    keep.update(f for c in small for f in c["functions"])
    collapsed = [c for c in collapsed if c["count"] >= MIN_COLLAPSE]
    nodes = []
    for name in sorted(keep, key=lambda n: (depth[n], n)):
        attrs = merged.nodes[name]
        side = "both" if name in own and name in ref else ("entry" if name in own else "ref")
        nodes.append({"name": name, "side": side, "depth": depth[name],
                      "section": attrs["section"], "init": bool(attrs.get("init")),
                      "root": name in (entry.root, reference.root),
                      "convergence": name in div.convergence})
    edges = [{"from": a, "to": b, "kind": str(e.kind), "via": e.via}
             for a, b, e in sorted(merged.edges(data="edge")) if a in keep and b in keep]
    return {"entry": entry.entry.name, "reference": reference.entry.name,
            "convergence": div.convergence, "max_depth": max_depth,
            "region": len(depth), "nodes": nodes, "edges": edges, "collapsed": collapsed}


def _merged(parts: list[tuple[EntryGraph, dict[str, int]]]) -> nx.DiGraph:
    """Union of the regions' subgraphs; an edge both entries have keeps the first's."""
    merged = nx.DiGraph()
    for graph, part in parts:
        sub = graph.graph.subgraph(part)
        for name, attrs in sub.nodes(data=True):
            if name not in merged:
                merged.add_node(name, **attrs)
        for a, b, edge in sub.edges(data="edge"):
            if not merged.has_edge(a, b):
                merged.add_edge(a, b, edge=edge)
    return merged


def _bfs_parents(g: nx.DiGraph, roots: list[str]) -> dict[str, str | None]:
    """A breadth-first tree over g from the roots (sorted successors: deterministic)."""
    parent: dict[str, str | None] = {r: None for r in roots if r in g}
    queue = deque(parent)
    while queue:
        node = queue.popleft()
        for succ in sorted(g.successors(node)):
            if succ not in parent:
                parent[succ] = node
                queue.append(succ)
    return parent


def _kept(g: nx.DiGraph, depth: dict[str, int], parent: dict[str, str | None],
          joins: set[str], max_depth: int) -> set[str]:
    """Shallow nodes, convergence points and init functions, with their tree chains."""
    wanted = {n for n in g if depth[n] <= max_depth or n in joins or g.nodes[n].get("init")}
    keep: set[str] = set()
    for node in wanted:
        while node is not None and node not in keep:
            keep.add(node)
            node = parent.get(node)
    return keep


def _collapsed(depth: dict[str, int], parent: dict[str, str | None],
               keep: set[str]) -> list[dict]:
    """Hidden functions grouped under the kept function their tree chain leaves from."""
    under: dict[str, list[str]] = {}
    for node in depth:
        if node in keep:
            continue
        top = node
        while parent.get(top) is not None and parent[top] not in keep:
            top = parent[top]
        anchor = parent.get(top)
        if anchor is not None:
            under.setdefault(anchor, []).append(node)
    return [{"under": k, "count": len(v), "functions": sorted(v)}
            for k, v in sorted(under.items())]


def _q(text: str) -> str:
    """A DOT double-quoted string."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def to_dot(data: dict, clusters: dict[str, str], anchor_prefix: str = "fn-") -> str:
    """DOT text of a divergent graph; `clusters` maps a function to its cluster label."""
    entry, ref = data["entry"], data["reference"]
    lines = [f"digraph {_q('diverge ' + entry)} {{",
             '  graph [rankdir=LR, fontname="Helvetica", fontsize=11, nodesep=0.25, '
             'ranksep=0.45, newrank=true, '
             f'label={_q(f"{entry} vs {ref}: boot paths up to convergence")}, labelloc=t];',
             '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=10, '
             'height=0.3];',
             '  edge [fontname="Helvetica", fontsize=8, arrowsize=0.6];']
    groups: dict[str, list[str]] = {}
    where: dict[str, str] = {}
    for node in data["nodes"]:
        where[node["name"]] = clusters.get(node["name"], node["section"])
        groups.setdefault(where[node["name"]], []).append(_node_line(node, anchor_prefix))
    for item in data["collapsed"]:
        more = _q(f"more:{item['under']}")
        groups.setdefault(where.get(item["under"], ""), []).append(
            f'{more} [label={_q(_more_label(item["count"]))}, shape=note, '
            'style="filled,dashed", fillcolor="#f4f4f4", color="#888888", fontcolor="#555555"];')
        lines.append(f'  {_q(item["under"])} -> {more} [style=dotted, color="#888888", '
                     'arrowhead=none];')
    for i, (label, members) in enumerate(sorted(groups.items())):
        lines.append(f"  subgraph cluster_{i} {{")
        lines.append(f'    label={_q(label)}; style="rounded,dashed"; color="#999999"; '
                     'fontcolor="#555555"; fontsize=9;')
        lines += ["    " + m for m in members]
        lines.append("  }")
    for e in data["edges"]:
        lines.append(f"  {_q(e['from'])} -> {_q(e['to'])} [{_edge_attrs(e)}];")
    lines += _legend(entry, ref)
    lines.append("}")
    return "\n".join(lines) + "\n"


def _more_label(count: int) -> str:
    return f"{count} more function" + ("" if count == 1 else "s")


def _node_line(node: dict, anchor_prefix: str) -> str:
    name = node["name"]
    attrs = [f"fillcolor={_q(FILL[node['side']])}", f"URL={_q('#' + anchor_prefix + name)}",
             f"tooltip={_q(name + ' (' + node['section'] + ')')}"]
    notes = [word for word, flag in (("entry", node["root"]),
                                     ("convergence", node["convergence"])) if flag]
    if notes:
        attrs.append(f"label={_q(name + chr(10) + '(' + ', '.join(notes) + ')')}")
    if node["convergence"]:
        attrs += ["penwidth=2.5", 'color="#1b7f1b"']
    elif node["root"]:
        attrs += ["penwidth=2", 'color="#000000"']
    return f"{_q(name)} [{', '.join(attrs)}];"


def _edge_attrs(edge: dict) -> str:
    style, colour = EDGE_STYLE.get(edge["kind"], ("solid", "#333333"))
    attrs = [f"style={style}", f"color={_q(colour)}", f"tooltip={_q(edge['kind'])}"]
    if edge["kind"].startswith("indirect") or edge["kind"] == "exception":
        label = edge["via"] or edge["kind"]
        attrs += [f"label={_q(label)}", f"fontcolor={_q(colour)}"]
    return ", ".join(attrs)


def _legend(entry: str, ref: str) -> list[str]:
    """A legend cluster: node colours and the edge styles."""
    rows = "".join(
        f'<tr><td bgcolor="{FILL[side]}" border="1" width="18"> </td>'
        f'<td align="left">{text}</td></tr>'
        for side, text in (("ref", f"{ref} only"), ("entry", f"{entry} only"),
                           ("both", "both entries")))
    rows += ('<tr><td border="1" color="#1b7f1b"><b>C</b></td>'
             '<td align="left">convergence point</td></tr>')
    styles = "".join(
        f'<tr><td align="left"><font color="{colour}">{kind}</font></td>'
        f'<td align="left">{style}</td></tr>' for kind, (style, colour) in EDGE_STYLE.items())
    table = ('<<table border="0" cellborder="0" cellspacing="1" cellpadding="1">'
             f'<tr><td colspan="2"><b>legend</b></td></tr>{rows}'
             f'<tr><td colspan="2"><b>edges</b></td></tr>{styles}</table>>')
    return ["  subgraph cluster_legend {", '    label=""; style="rounded"; color="#cccccc";',
            f'    legend [shape=plaintext, style="", fontsize=7, label={table}];', "  }"]


def render_svg(dot_file: Path, svg_file: Path) -> str | None:
    """Run `dot -Tsvg`; None on success, else why there is no SVG."""
    dot = shutil.which("dot")
    if dot is None:
        return "Graphviz `dot` is not installed (Debian: apt-get install graphviz)"
    try:
        proc = subprocess.run([dot, "-Tsvg", "-o", str(svg_file), str(dot_file)],
                              capture_output=True, text=True, timeout=DOT_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"dot failed: {exc}"
    if proc.returncode != 0:
        return f"dot failed (exit {proc.returncode}): {proc.stderr.strip()[:300]}"
    return None
