"""One analysis of an image: its entries and their graphs, cached on disk by build-id."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import networkx as nx

from entrycheck import __version__, cache
from entrycheck.binary.functions import FunctionTable, normalise_name
from entrycheck.binary.image import Image
from entrycheck.entries import Entry, find_entries, select_entry
from entrycheck.errors import EntrycheckError
from entrycheck.graph import Edge, EntryGraph, GraphBuilder, Unresolved
from entrycheck.knowledge import Knowledge, x86
from entrycheck.model import EdgeKind


@dataclass
class Analysis:
    """Everything the queries need, free of ELF and decoder objects (so it caches as data)."""

    image: str
    build_id: str | None
    bits: int
    has_dwarf: bool
    functions: frozenset[str]
    entries: list[Entry]
    graphs: dict[str, EntryGraph]
    seconds: dict[str, float] = field(default_factory=dict)
    cached: bool = False
    complete: bool = False  # graphs go past the boot path (start_kernel, error exits)

    @property
    def knowledge(self) -> Knowledge:
        return x86()

    @property
    def reference(self) -> str:
        """The entry others are compared with: `reference` of the knowledge data when the
        image has it, else the catalogued native entry of the image's width (native32)."""
        names = {e.name for e in self.entries}
        if self.knowledge.reference in names:
            return self.knowledge.reference
        return next((s.name for s in self.knowledge.entries if s.image == "vmlinux"
                     and s.bits == self.bits and s.name in names), self.knowledge.reference)

    def entry(self, name: str) -> Entry:
        return select_entry(self.entries, name)

    def graph(self, name: str) -> EntryGraph:
        return self.graphs[self.entry(name).name]

    def is_function(self, name: str) -> bool:
        """Is this a code symbol of the image (exactly, or without compiler suffixes)?"""
        wanted = normalise_name(name)
        return name in self.functions or any(normalise_name(f) == wanted for f in self.functions)

    def function_in(self, graph: EntryGraph, name: str) -> str:
        """The node for a user-given function name (exact, else without compiler suffixes)."""
        if name in graph.graph:
            return name
        wanted = normalise_name(name)
        for node in graph.graph:
            if normalise_name(node) == wanted:
                return node
        if self.is_function(name):
            raise EntrycheckError(f"entry {graph.entry.name} does not reach {name}")
        raise EntrycheckError(f"no function named {name!r} in {self.image}")


Progress = Callable[[str, int, int], None]


def analyse(path: Path | str, user_entries: list[str] = (), *, cache_dir: Path | None = None,
            progress: Progress | None = None,
            header: dict[str, tuple[int, int]] | None = None, complete: bool = False,
            ) -> Analysis:
    """Analyse every entry of an image, or load the result cached for its build.

    By default each entry's graph covers its boot path: the walk reaches start_kernel and
    error exits (panic) but does not go past them, which is what the path diffs, the check
    and traces up to start_kernel need. `complete` walks everything reachable (about three
    times the work on a real kernel). `header`: the entries a bzImage's header gives, to
    cross-check a compressed vmlinux's symbols."""
    knowledge = x86()
    image = Image(path)
    keys = [*user_entries, *(f"{k}@{v[0]:#x}" for k, v in sorted((header or {}).items())),
            "complete" if complete else "boot"]
    key = _cache_key(image, keys)
    hit = cache.load("analyses", key, cache_dir)
    if hit is not None:
        try:
            result = _from_data(hit, image)
        except (KeyError, TypeError, ValueError):
            result = None
        if result is not None:
            result.image = str(path)  # the same build, read from a copy with or without DWARF
            result.cached = True
            return result
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    functions = FunctionTable(image)
    entries = find_entries(image, functions, knowledge, list(user_entries), header)
    seconds["symbols"] = time.perf_counter() - start
    builder = GraphBuilder(image, functions, knowledge)
    init = _init_predicate(image, functions, knowledge)
    graphs = {}
    for i, entry in enumerate(entries):
        if progress:
            progress(f"decoding from {entry.name}", i, len(entries))
        t = time.perf_counter()
        graph = builder.build(entry, frozenset() if complete else
                              knowledge.boot_ends | knowledge.error_exits)
        for name, address in graph.graph.nodes(data="address"):
            graph.graph.nodes[name]["init"] = init(address, graph.graph.nodes[name]["section"])
        graphs[entry.name] = graph
        seconds[f"graph {entry.name}"] = time.perf_counter() - t
    if progress:
        progress("done", len(entries), len(entries))
    seconds["total"] = time.perf_counter() - start
    result = Analysis(str(path), image.build_id, image.bits, image.has_dwarf,
                      functions.names(), entries, graphs, seconds,
                      complete=complete)
    cache.store("analyses", key, _to_data(result), cache_dir)
    return result


HEAD_GAP = 0x10000  # a catalogued head symbol this far past the head block is not in it


def _init_predicate(image: Image, functions: FunctionTable,
                    knowledge: Knowledge) -> Callable[[int, str], bool]:
    """Init code: the init sections, the catalogued head symbols, and where head code is
    linked into .text (6.1, 6.12) the block from _text to the last head symbol that follows
    on without a large gap (6.12 moved secondary_startup_64 far out of that block)."""
    text = image.symbol_address("_text")
    heads = sorted((f.start, f.end) for s in knowledge.head_symbols
                   if (f := functions.named(s)) is not None)
    head_starts = {start for start, _ in heads}
    head_end = text or 0
    if image.section(".head.text") is None and text is not None:
        for start, end in heads:
            if start > head_end + HEAD_GAP:
                break
            head_end = max(head_end, end)

    def is_init(address: int, section: str) -> bool:
        return (section in knowledge.init_sections or address in head_starts
                or (text or 0) <= address < head_end)

    return is_init


def _cache_key(image: Image, keys: list[str]) -> list[str]:
    """What an analysis depends on besides the code: the build (build-id, else the file's
    path, size and time) and the entries asked for."""
    identity = image.build_id
    if identity is None:
        st = image.path.stat()
        identity = f"{image.path.resolve()}:{st.st_size}:{st.st_mtime_ns}"
    return [identity, __version__, *sorted(keys)]


def _to_data(result: Analysis) -> dict:
    """The analysis as JSON-compatible data (for the cache)."""
    return {
        "image": result.image, "build_id": result.build_id, "bits": result.bits,
        "functions": sorted(result.functions), "complete": result.complete,
        "seconds": result.seconds,
        "entries": [asdict(e) for e in result.entries],
        "graphs": {name: _graph_data(g) for name, g in result.graphs.items()},
    }


def _graph_data(g: EntryGraph) -> dict:
    return {
        "entry": g.entry.name, "root": g.root,
        "nodes": [[n, attrs] for n, attrs in g.graph.nodes(data=True)],
        "edges": [[a, b, [str(d["edge"].kind), d["edge"].site, d["edge"].text, d["edge"].via],
                   bool(d.get("tail"))] for a, b, d in g.graph.edges(data=True)],
        "unresolved": [list(u) for u in g.unresolved],
        "handoffs": [list(u) for u in g.handoffs],
    }


def _from_data(data: dict, image: Image) -> Analysis:
    entries = [Entry(**{**e, "found": tuple(e["found"])}) for e in data["entries"]]
    by_name = {e.name: e for e in entries}
    graphs = {}
    for name, gd in data["graphs"].items():
        g = nx.DiGraph()
        for node, attrs in gd["nodes"]:
            g.add_node(node, **{k: tuple(v) if isinstance(v, list) else v
                                for k, v in attrs.items()})
        for a, b, (kind, site, text, via), tail in gd["edges"]:
            g.add_edge(a, b, edge=Edge(EdgeKind(kind), site, text, via), **(
                {"tail": True} if tail else {}))
        graphs[name] = EntryGraph(by_name[gd["entry"]], gd["root"], g,
                                  [Unresolved(*u) for u in gd["unresolved"]],
                                  [Unresolved(*u) for u in gd["handoffs"]])
    return Analysis(data["image"], data["build_id"], data["bits"], image.has_dwarf,
                    frozenset(data["functions"]), entries, graphs, data["seconds"],
                    complete=data["complete"])
