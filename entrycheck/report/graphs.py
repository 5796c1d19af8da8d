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

from entrycheck.model import EDGE_STYLES, Edge, EdgeKind, EntryGraph, Node
from entrycheck.paths import PathRules, boot_path, diverge, reach

MAX_DEPTH = 4
MIN_COLLAPSE = 3  # fewer hidden functions than this under one node: show them instead
DOT_TIMEOUT = 120

# Node fill per side ("ref": the reference only, "entry": the entry only, "both").
FILL = {"ref": "#cfe2ff", "entry": "#ffd8a8", "both": "#d3f0d3"}


def region(graph: EntryGraph, path: set[int], joins: Iterable[int]) -> dict[int, int]:
    """Function -> depth from the root, for what the boot path `path` reaches before the
    join points (the joins included, not expanded; what the joins reach excluded)."""
    joins = set(joins)
    after = reach(graph, [j for j in joins if j in path], within=path) - joins
    depth = {graph.root: 0}
    queue = deque([graph.root])
    while queue:
        node = queue.popleft()
        if node in joins and node != graph.root:
            continue
        for succ in graph.succ.get(node, ()):
            if succ in path and succ not in depth:
                depth[succ] = depth[node] + 1
                queue.append(succ)
    return {n: d for n, d in depth.items() if n not in after}


def divergent_graph(entry: EntryGraph, reference: EntryGraph, rules: PathRules,
                    max_depth: int = MAX_DEPTH) -> dict:
    """The JSON form of the divergent region of `entry` against `reference`: nodes (with
    side, depth, convergence flag), edges (kind, via) and what was collapsed."""
    div = diverge(entry, reference, rules)
    own, ref = boot_path(entry, rules), boot_path(reference, rules)
    parts = [(entry, region(entry, own, div.convergence)),
             (reference, region(reference, ref, div.convergence))]
    depth: dict[int, int] = {}
    for _, part in parts:
        for addr, d in part.items():
            depth[addr] = min(d, depth.get(addr, d))
    nodes_of, succ = _merged(parts)
    parent = _bfs_parents(succ, [entry.root, reference.root], nodes_of)
    joins = set(div.convergence)
    keep = _kept(nodes_of, depth, parent, joins, max_depth)
    collapsed = _collapsed(depth, parent, keep)
    small = [c for c in collapsed if c["count"] < MIN_COLLAPSE]
    keep.update(f for c in small for f in c["functions"])
    collapsed = [c for c in collapsed if c["count"] >= MIN_COLLAPSE]
    name = {a: n.name for a, n in nodes_of.items()}
    nodes = []
    for addr in sorted(keep, key=lambda a: (depth[a], name[a])):
        node = nodes_of[addr]
        side = "both" if addr in own and addr in ref else ("entry" if addr in own else "ref")
        nodes.append({"name": node.name, "side": side, "depth": depth[addr],
                      "section": node.section, "init": node.init,
                      "root": addr in (entry.root, reference.root),
                      "convergence": addr in joins})
    edges = sorted(({"from": name[a], "to": name[b], "kind": str(e.kind), "via": e.via}
                    for a, out in succ.items() for b, e in out.items()
                    if a in keep and b in keep), key=lambda e: (e["from"], e["to"]))
    for c in collapsed:
        c["under"] = name[c["under"]]
        c["functions"] = sorted(name[f] for f in c["functions"])
    return {"entry": entry.entry, "reference": reference.entry,
            "convergence": [name.get(a, reference.name(a)) for a in div.convergence],
            "max_depth": max_depth, "region": len(depth), "nodes": nodes, "edges": edges,
            "collapsed": collapsed}


def _merged(parts: list[tuple[EntryGraph, dict[int, int]]]) -> tuple[dict, dict]:
    """Union of the regions' nodes and edges; an edge both entries have keeps the first's."""
    nodes: dict[int, Node] = {}
    succ: dict[int, dict[int, Edge]] = {}
    for graph, part in parts:
        for addr in part:
            nodes.setdefault(addr, graph.nodes[addr])
            for b, edge in graph.succ.get(addr, {}).items():
                if b in part:
                    succ.setdefault(addr, {}).setdefault(b, edge)
    return nodes, succ


def _bfs_parents(succ: dict[int, dict[int, Edge]], roots: list[int],
                 nodes: dict[int, Node]) -> dict[int, int | None]:
    """A breadth-first tree from the roots (successors by name: deterministic)."""
    parent: dict[int, int | None] = {r: None for r in roots if r in nodes}
    queue = deque(parent)
    while queue:
        node = queue.popleft()
        for nxt in sorted(succ.get(node, ()), key=lambda a: nodes[a].name):
            if nxt not in parent:
                parent[nxt] = node
                queue.append(nxt)
    return parent


def _kept(nodes: dict[int, Node], depth: dict[int, int], parent: dict[int, int | None],
          joins: set[int], max_depth: int) -> set[int]:
    """Shallow nodes, convergence points and init functions, with their tree chains."""
    wanted = {a for a in nodes if depth[a] <= max_depth or a in joins or nodes[a].init}
    keep: set[int] = set()
    for node in wanted:
        while node is not None and node not in keep:
            keep.add(node)
            node = parent.get(node)
    return keep


def _collapsed(depth: dict[int, int], parent: dict[int, int | None],
               keep: set[int]) -> list[dict]:
    """Hidden functions grouped under the kept function their tree chain leaves from."""
    under: dict[int, list[int]] = {}
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
    style = EDGE_STYLES[EdgeKind(edge["kind"])]
    attrs = [f"style={style.line}", f"color={_q(style.colour)}", f"tooltip={_q(edge['kind'])}"]
    if style.indirect or style.fault:
        label = edge["via"] or edge["kind"]
        attrs += [f"label={_q(label)}", f"fontcolor={_q(style.colour)}"]
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
        f'<tr><td align="left"><font color="{style.colour}">{kind}</font></td>'
        f'<td align="left">{style.line}</td></tr>' for kind, style in EDGE_STYLES.items())
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
