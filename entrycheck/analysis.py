"""One analysis of an image: its entries and their graphs, cached on disk by build-id."""

from __future__ import annotations

import gc
import json
import time
from collections.abc import Callable, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from functools import cached_property
from pathlib import Path

from entrycheck import __version__, cache
from entrycheck.binary.functions import FunctionTable, NameIndex
from entrycheck.binary.image import Image
from entrycheck.entries import Entry, find_entries, note_warnings, select_entry
from entrycheck.errors import NotReached
from entrycheck.knowledge import Knowledge, x86
from entrycheck.model import (
    GRAPH_LISTS,
    EdgeTable,
    EntryGraph,
    GraphTable,
    Strings,
)
from entrycheck.paths import PathRules

FORMAT = 10  # of the cached data
COLD = ".cold"  # GCC's name for the part of a function split off as unlikely code


@dataclass
class Analysis:
    """Everything the queries need, free of ELF and decoder objects (so it caches as data)."""

    image: str
    build_id: str | None
    bits: int
    has_dwarf: bool
    names: NameIndex
    entries: list[Entry]
    graphs: Mapping[str, EntryGraph]
    special: list[dict] = field(default_factory=list)  # descriptor tables read, and how
    seconds: dict[str, float] = field(default_factory=dict)
    cached: bool = False
    complete: bool = False  # graphs go past the boot path (start_kernel, error exits)
    path_rules: PathRules | None = None  # known already: from the cache, or joined images
    warnings: list[str] = field(default_factory=list)  # what the image says that is off
    image_kind: str = ""  # `vmlinux` or `compressed` (empty: found from the graphs)

    def all_warnings(self) -> list[str]:
        """The image's warnings and its entries' (a note that disagrees with a symbol)."""
        return [*self.warnings, *(f"entry {e.name}: {e.warning}" for e in self.entries
                                  if e.warning)]

    @property
    def knowledge(self) -> Knowledge:
        return x86()

    @property
    def kind(self) -> str:
        """`compressed` for the decompressor's vmlinux, else `vmlinux`."""
        if self.image_kind:
            return self.image_kind
        return next((n.image for g in self.graphs.values() for n in g.nodes.values()),
                    "vmlinux")

    @property
    def reference(self) -> str:
        """The entry others are compared with: `reference` of the knowledge data when the
        image has it, else the catalogued native entry of the image's width (native32)."""
        names = {e.name for e in self.entries}
        if self.knowledge.reference in names:
            return self.knowledge.reference
        return next((s.name for s in self.knowledge.entries if s.image == "vmlinux"
                     and s.bits == self.bits and s.name in names), self.knowledge.reference)

    @property
    def function_count(self) -> int:
        """Functions (code symbol addresses) in the image."""
        return len({a for addrs in self.names.by_name.values() for a in addrs})

    def instruction_text(self, address: int, mode: int) -> str:
        """The instruction at an address of this image (for people)."""
        from entrycheck.decode.decoder import instruction_text

        image = self.__dict__.get("_image")
        if image is None:
            image = self.__dict__["_image"] = Image(self.image)
        return instruction_text(image.read, address, mode)

    def entry(self, name: str) -> Entry:
        return select_entry(self.entries, name)

    def graph(self, name: str) -> EntryGraph:
        return self.graphs[self.entry(name).name]

    def addresses(self, which: str) -> frozenset[int]:
        """Addresses of the functions a knowledge list (noreturn, boot_ends...) names."""
        return self.names.matching(self.knowledge.names(which, self.kind))

    @cached_property
    def rules(self) -> PathRules:
        """The knowledge the path questions need, as this image's addresses."""
        if self.path_rules is not None:
            return self.path_rules
        incidental = frozenset(a for name, addrs in self.names.by_name.items()
                               if COLD in name for a in addrs) | self.addresses("incidental")
        return PathRules(self.addresses("boot_ends"), self.addresses("error_exits"),
                         self.addresses("noreturn"), self.addresses("report_functions"),
                         self.addresses("early_unavailable"), incidental)

    def function_in(self, graph: EntryGraph, name: str) -> int:
        """The node a user-given name means in one entry's graph; EntrycheckError when the
        name means no function, several, or one the entry does not reach."""
        found = self.names.candidates(name)
        reached = [a for a in found if a in graph.nodes]
        if len(reached) == 1:
            return reached[0]
        if len(reached) > 1:
            self.names.find(name)  # raises: ambiguous, with the choices
        if found:
            raise NotReached(graph.entry, name, found)
        self.names.find(name)  # raises: no such function, with close names
        raise AssertionError  # pragma: no cover


Progress = Callable[[str, int, int], None]


def analyse(path: Path | str, user_entries: list[str] = (), *, cache_dir: Path | None = None,
            progress: Progress | None = None,
            header: dict[str, tuple[int, int]] | None = None, complete: bool = False,
            ) -> Analysis:
    """Analyse every entry of an image, or load the result cached for its build.

    By default each entry's graph covers its boot path: the walk reaches start_kernel and
    error exits (panic) but does not go past them, which is what the path diffs, the check
    and traces up to start_kernel need. `complete` walks everything reachable: the whole
    boot. `header`: the entries a bzImage's header gives, to cross-check a compressed
    vmlinux's symbols."""
    image = Image(path)
    keys = [*user_entries, *(f"{k}@{v[0]:#x}" for k, v in sorted((header or {}).items())),
            "complete" if complete else "boot"]
    key = _cache_key(image, keys)
    hit = cache.load_entry("analyses", key, cache_dir)
    if hit is not None:
        try:
            with _no_gc():
                result = _from_data(*hit, image)
        except (KeyError, TypeError, ValueError, IndexError, AttributeError):
            result = None
        if result is not None:
            result.image = str(path)  # the same build, read from a copy with or without DWARF
            result.cached = True
            return result
    with _no_gc():
        result = _build(image, path, x86(), user_entries, header, complete, progress)
    if cache.enabled():
        cache.store_entry("analyses", key, *_to_data(result), cache_dir)
    return result


@contextmanager
def _no_gc():
    """The cyclic garbage collector off while graphs are built: they are millions of small
    acyclic objects that every collection would walk again (a quarter of the time)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _build(image: Image, path: Path | str, knowledge: Knowledge, user_entries: list[str],
           header: dict[str, tuple[int, int]] | None, complete: bool,
           progress: Progress | None) -> Analysis:
    """Decode from every entry and build its graph."""
    from entrycheck.graph import GraphBuilder  # the decoder and resolvers: not for a cache hit

    seconds: dict[str, float] = {}
    start = time.perf_counter()
    functions = FunctionTable(image)
    entries = find_entries(image, functions, knowledge, list(user_entries), header)
    seconds["symbols"] = time.perf_counter() - start
    builder = GraphBuilder(image, functions, knowledge)
    kind = builder.ctx.kind
    stop = frozenset() if complete else \
        knowledge.names("boot_ends", kind) | knowledge.names("error_exits", kind)
    init = _init_predicate(image, functions, knowledge)
    graphs = {}
    for i, entry in enumerate(entries):
        if progress:
            progress(f"decoding from {entry.name}", i, len(entries))
        t = time.perf_counter()
        graphs[entry.name] = builder.build(entry, stop, init)
        seconds[f"graph {entry.name}"] = time.perf_counter() - t
    if progress:
        progress("done", len(entries), len(entries))
    seconds["total"] = time.perf_counter() - start
    return Analysis(str(path), image.build_id, image.bits, image.has_dwarf, functions.index,
                    entries, graphs, builder.ctx.special.summary(), seconds,
                    complete=complete, warnings=note_warnings(image, knowledge, entries),
                    image_kind=kind)


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
    return [identity, __version__, str(FORMAT), *sorted(keys)]


# -- the cached form: JSON for the small parts, names and the graphs' arrays as blobs ----


def _to_data(result: Analysis) -> tuple[dict, dict[str, bytes]]:
    blobs: dict[str, bytes] = {"names": json.dumps(result.names.to_data()).encode()}
    graphs: dict[str, dict] = {}
    table_names: dict[int, str] = {}  # id(EdgeTable) -> its name in the entry
    strings: dict[str, list[str]] = {}
    counts: dict[str, int] = {}
    for name, g in result.graphs.items():
        edges = g.table.edges
        table = table_names.get(id(edges))
        if table is None:  # the entries' graphs share one edge table: stored once
            table = table_names[id(edges)] = str(len(table_names))
            blobs.update({f"edges:{table}/{k}": v for k, v in edges.blobs().items()})
            strings[table] = edges.strings.items
            counts[table] = len(edges)
        blobs.update({f"graph:{name}/{k}": v for k, v in g.table.blobs().items()})
        for listed in GRAPH_LISTS:
            blobs[f"graph:{name}/{listed}"] = json.dumps(
                [list(item) for item in getattr(g, listed)]).encode()
        graphs[name] = {"root": g.root, "edges": table, "resolved": g.resolved}
    rules = result.rules
    data = {
        "image": result.image, "build_id": result.build_id, "bits": result.bits,
        "complete": result.complete, "kind": result.kind,
        "seconds": result.seconds, "special": result.special,
        "entries": [asdict(e) for e in result.entries], "graphs": graphs,
        "edge_strings": strings, "edge_counts": counts,
        "rules": {f.name: sorted(getattr(rules, f.name)) for f in fields(PathRules)},
        "warnings": result.warnings,
    }
    return data, blobs


class _LazyGraphs(Mapping):
    """Entry name -> EntryGraph, each made from the cache's blobs when first asked for."""

    def __init__(self, data: dict, blobs: Mapping[str, bytes]):
        self._data, self._blobs = data, blobs
        self._tables: dict[str, EdgeTable] = {}
        self._made: dict[str, EntryGraph] = {}

    def __getitem__(self, name: str) -> EntryGraph:
        graph = self._made.get(name)
        if graph is None:
            gd = self._data["graphs"][name]
            try:
                table = GraphTable.from_blobs(
                    self._edges(gd["edges"]),
                    {k: self._blobs[f"graph:{name}/{k}"] for k in GraphTable.ARRAYS})
                graph = self._made[name] = EntryGraph(
                    name, gd["root"], table, resolved=dict(gd["resolved"]),
                    lists=lambda listed, name=name: self._list(name, listed))
            except (KeyError, TypeError, ValueError, IndexError, RecursionError,
                    OverflowError) as exc:
                raise cache.DamagedEntry(f"the cached graph of {name} is damaged ({exc}): "
                                         "remove the cache folder") from None
        return graph

    def _list(self, name: str, listed: str) -> list:
        try:
            kind = GRAPH_LISTS[listed]
            return [kind(*item) for item in json.loads(self._blobs[f"graph:{name}/{listed}"])]
        except (KeyError, TypeError, ValueError, RecursionError) as exc:
            raise cache.DamagedEntry(f"the cached {listed} of {name} are damaged ({exc}): "
                                     "remove the cache folder") from None

    def _edges(self, name: str) -> EdgeTable:
        table = self._tables.get(name)
        if table is None:
            strings = Strings([str(t) for t in self._data["edge_strings"][name]])
            count = self._data["edge_counts"][name]
            if not isinstance(count, int) or not 0 <= count <= cache.MAX_ENTRY_BYTES:
                raise ValueError(f"edge count {count!r}")
            table = self._tables[name] = EdgeTable.from_blobs(
                strings, _Prefixed(self._blobs, f"edges:{name}/"), count)
        return table

    def __iter__(self):
        return iter(self._data["graphs"])

    def __len__(self) -> int:
        return len(self._data["graphs"])


class _Prefixed(Mapping):
    """The blobs whose names start with a prefix, by the rest of their names."""

    def __init__(self, blobs: Mapping[str, bytes], prefix: str):
        self._blobs, self._prefix = blobs, prefix

    def __getitem__(self, name: str) -> bytes:
        return self._blobs[self._prefix + name]

    def __iter__(self):
        n = len(self._prefix)
        return (k[n:] for k in self._blobs if k.startswith(self._prefix))

    def __len__(self) -> int:
        return sum(1 for _ in self)


def _from_data(data: dict, blobs: Mapping[str, bytes], image: Image) -> Analysis:
    graphs = _LazyGraphs(data, blobs)
    for name in graphs:  # every graph's parts are there (else a miss, not an error later)
        for k in (*GraphTable.ARRAYS, *GRAPH_LISTS):
            if f"graph:{name}/{k}" not in blobs:
                raise KeyError(name)
    for name in data["edge_strings"]:
        for k in EdgeTable.ARRAYS:
            if f"edges:{name}/{k}" not in blobs:
                raise KeyError(name)
    entries = [Entry(**{**e, "found": tuple(e["found"])}) for e in data["entries"]]
    rules = PathRules(**{k: frozenset(v) for k, v in data["rules"].items()})
    names = NameIndex.lazy(lambda: _names(blobs), str(image.path))
    return Analysis(data["image"], data["build_id"], data["bits"], image.has_dwarf,
                    names, entries, graphs, data["special"], data["seconds"],
                    complete=data["complete"], path_rules=rules,
                    warnings=[str(w) for w in data.get("warnings", [])],
                    image_kind=str(data["kind"]))


def _names(blobs: Mapping[str, bytes]) -> tuple[dict[str, list[int]], dict[int, str]]:
    """The cached name index (`NameIndex.to_data`'s form), converted field by field: a
    damaged one is an error, not a crash."""
    try:
        data = json.loads(blobs["names"])
        return ({n: [int(a) for a in addrs] for n, addrs in data["names"].items()},
                {int(a): str(f) for a, f in data["files"].items()})
    except (KeyError, ValueError, TypeError, AttributeError, RecursionError):
        raise cache.DamagedEntry("the cached name index is damaged: remove the cache "
                                 "folder") from None
