"""entrycheck.resolve.jump_tables: `jmp *table(,%rdi,8)` of a dense switch (sample
early_cpu_set_mode): the cases are decoded in place; the site is accounted for without an
edge, and a call in one case is an ordinary edge."""

from __future__ import annotations

import pytest

from entrycheck.model import EdgeKind, How
from entrycheck.resolve.jump_tables import JumpTables

from ..conftest import debian_kernel
from .conftest import query


def test_table_site_is_resolved_without_an_edge(built):
    link, = built.links(JumpTables, "early_cpu_set_mode")
    assert (link.target, link.kind) == (None, EdgeKind.JUMP)
    site, = [s for s in built.facts("early_cpu_set_mode").sites if s.how == How.TABLE]
    assert site.address == link.site
    assert built.image.read(site.address, 1) == b"\xff"  # jmp *disp(,%reg,8)


def test_case_calls_are_reached(built, graphs):
    native = graphs["native"]
    edge = built.edge(native, "early_cpu_set_mode", "jump_table_case_helper")
    assert (edge.kind, edge.resolver) == (EdgeKind.CALL, "direct")
    assert native.resolved["jump-tables"] == 1
    assert all(u.function != built.addr("early_cpu_set_mode") for u in native.unresolved)


@pytest.mark.realkernel
@pytest.mark.parametrize("version", ["6.1", "6.12"])
def test_debian_builds_have_no_jump_tables(capsys, version):
    """Debian builds with retpolines, hence -fno-jump-tables: gcc emits no
    `jmp *table(,%reg,8)`, and the decoder finds no jump-table site on the boot path."""
    kernel = debian_kernel(version)
    config = kernel["config"].read_text()
    assert "CONFIG_RETPOLINE=y" in config or "CONFIG_MITIGATION_RETPOLINE=y" in config
    out = query(capsys, "reach", str(kernel["vmlinux_nodebug"]), "--entry", "native",
                "--scope", "early")
    assert out["resolvers"]["direct"] > 1000
    assert "jump-tables" not in out["resolvers"]
