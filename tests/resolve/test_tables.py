"""entrycheck.resolve.tables: every entry of a linker table the kernel walks is reached
from the walker (initcalls from do_initcall_level, or the first walker the image has);
for tables of struct pointers (cpu_dev), the functions the structs hold."""

from __future__ import annotations

import pytest

from entrycheck.model import EdgeKind
from entrycheck.resolve.tables import Tables

from .conftest import snippet_graph

SOURCE = r"""
    .text
    .globl startup_64
startup_64:
    call early_cpu_init
    call kernel_init_freeable           # do_initcall_level is inlined into it here
    ret
early_cpu_init: ret
kernel_init_freeable: ret
pure_initcall: ret
device_initcall: ret
intel_early_init: ret
intel_init: ret
never_walked: ret

    .data
    .balign 8
__initcall0_start:                      # initcall_entry_t: self-relative offsets
    .long pure_initcall - .
    .long device_initcall - .
__initcall_end:
__x86_cpu_dev_start:                    # cpu_dev_register(): pointers to struct cpu_dev
    .quad intel_cpu_dev
__x86_cpu_dev_end:
    .type intel_cpu_dev, @object
intel_cpu_dev:
    .quad 0, intel_early_init, intel_init
    .size intel_cpu_dev, . - intel_cpu_dev
"""


@pytest.fixture(scope="module")
def case():
    return snippet_graph(SOURCE)


def test_walkers_reach_the_entries(case):
    _, b, graph = case
    assert {b.functions.at(c).name: (e.kind, e.via) for c, e in
            graph.succ[b.addr("kernel_init_freeable")].items()} == {
        "pure_initcall": (EdgeKind.TABLE, "initcalls"),
        "device_initcall": (EdgeKind.TABLE, "initcalls")}
    assert {b.functions.at(c).name for c in graph.succ[b.addr("early_cpu_init")]} == {
        "intel_early_init", "intel_init"}
    assert "never_walked" not in b.reached(graph)


def test_links_of_a_walker(case):
    _, b, _ = case
    links = b.links(Tables, "kernel_init_freeable")
    assert [(ln.text, ln.target) for ln in links] == [
        ("walks initcalls", b.addr("pure_initcall")),
        ("walks initcalls", b.addr("device_initcall"))]
    assert b.links(Tables, "startup_64") == []


def test_sample_has_no_tables(built):
    assert built.resolver(Tables)._targets == {}
