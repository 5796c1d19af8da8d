"""What the resolver tests share: the sample kernel's graph builder and its entries' graphs
(walked without stopping at start_kernel), and graphs of assembled snippets.

Labels inside a snippet's functions are given `.type NAME, @object` so they stay
addresses, not functions of their own."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from entrycheck.binary.functions import FunctionTable
from entrycheck.binary.image import Image
from entrycheck.cli import main
from entrycheck.entries import Entry, find_entries
from entrycheck.graph import GraphBuilder
from entrycheck.knowledge import Knowledge, x86
from entrycheck.model import Edge, EntryGraph, Function, FunctionFacts
from entrycheck.resolve.base import Link, Resolver

from ..snippets import Snippet, assemble


@dataclass
class Built:
    """A builder over one image, with name look-ups for the tests."""

    image: Image
    functions: FunctionTable
    builder: GraphBuilder

    def func(self, name: str) -> Function:
        found = self.functions.named(name)
        assert found is not None, name
        return found

    def addr(self, name: str) -> int:
        return self.func(name).start

    def resolver(self, cls: type[Resolver]) -> Resolver:
        return next(r for r in self.builder.resolvers if type(r) is cls)

    def facts(self, name: str, mode: int = 64) -> FunctionFacts:
        func = self.func(name)
        return self.builder.facts(func, mode, func.start)

    def links(self, cls: type[Resolver], name: str, mode: int = 64) -> list[Link]:
        """What one resolver links from one function decoded from its start."""
        return list(self.resolver(cls).links(self.func(name), self.facts(name, mode)))

    def names(self, addresses) -> set[str]:
        return {self.functions.at(a).name for a in addresses}

    def edge(self, graph: EntryGraph, caller: str, callee: str) -> Edge:
        return graph.succ[self.addr(caller)][self.addr(callee)]

    def reached(self, graph: EntryGraph) -> set[str]:
        return self.names(graph.nodes)


def builder_for(image: Image, knowledge: Knowledge | None = None) -> Built:
    functions = FunctionTable(image)
    return Built(image, functions, GraphBuilder(image, functions, knowledge or x86()))


@pytest.fixture(scope="session")
def built(sample) -> Built:
    """The sample kernel's builder (shared: decoded functions are cached in it)."""
    return builder_for(Image(sample))


@pytest.fixture(scope="session")
def graphs(built) -> dict[str, EntryGraph]:
    """Each sample entry's whole graph."""
    entries = find_entries(built.image, built.functions, x86())
    return {e.name: built.builder.build(e) for e in entries}


def snippet_graph(source: str, entry: str = "startup_64", mode: int = 64,
                  knowledge: Knowledge | None = None) -> tuple[Snippet, Built, EntryGraph]:
    """An assembled snippet, its builder and the graph walked from `entry`."""
    snip = assemble(source)
    b = builder_for(snip.image, knowledge)
    graph = b.builder.build(Entry("test", entry, b.addr(entry), mode, ("symbol",)))
    return snip, b, graph


def query(capsys, *argv: str) -> dict:
    """The CLI's JSON answer (exit status 0)."""
    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def last_link(capsys, image, entry: str, function: str) -> tuple[list[str], dict]:
    """`why`'s chain to a function and the edge that reaches it."""
    out = query(capsys, "why", str(image), "--entry", entry, function)
    assert out["chain"][-1] == function
    return out["chain"], out["links"][-1]["edge"]


def reach_all(capsys, image, entry: str) -> set[str]:
    out = query(capsys, "reach", str(image), "--entry", entry, "--scope", "all")
    return {f["name"] for f in out["reached"]}
