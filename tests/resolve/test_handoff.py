"""entrycheck.resolve.handoff: the compressed kernel's `jmp *%rax` into the decompressed
vmlinux is a handoff, not an unresolved site (sample_vmlinux/compressed)."""

from __future__ import annotations

import pytest

from entrycheck.binary.image import Image
from entrycheck.entries import find_entries
from entrycheck.knowledge import x86
from entrycheck.model import EdgeKind
from entrycheck.resolve.handoff import Handoff

from ..conftest import ROOT
from .conftest import builder_for

COMPRESSED = ROOT / "sample_vmlinux" / "compressed" / "vmlinux"


@pytest.fixture(scope="module")
def compressed():
    return builder_for(Image(COMPRESSED))


def test_handoff_marks_without_edges(compressed):
    resolver = compressed.resolver(Handoff)
    inside = {compressed.functions.at(a).name for a in resolver.inside}
    assert inside <= x86().handoff_in and inside
    marks = [ln for f in compressed.functions
             for ln in resolver.links(f, compressed.facts(f.name))]
    assert marks and all((ln.target, ln.kind) == (None, EdgeKind.HANDOFF) for ln in marks)


def test_every_compressed_entry_hands_off(compressed):
    entries = find_entries(compressed.image, compressed.functions, x86())
    assert {e.name for e in entries} >= {"decompressor-32", "decompressor-64", "efi-pe"}
    for entry in entries:
        graph = compressed.builder.build(entry)
        assert graph.handoffs, entry.name
        assert {h.reason for h in graph.handoffs} == {"enters the decompressed vmlinux"}
        assert graph.resolved["handoff"] == len(graph.handoffs)
        assert not {u.site for u in graph.unresolved} & {h.site for h in graph.handoffs}


def test_vmlinux_has_no_handoff(built):
    resolver = built.resolver(Handoff)
    assert resolver.inside == set() and resolver.after == set()
