"""entrycheck.resolve.static_call: a call through a `__SCT__` trampoline runs the target a
constant `static_call_update()` on the entry's own path set (sample: xen_start_kernel ->
xen_early_hook for __SCT__early_hook); other entries keep the trampoline's own target."""

from __future__ import annotations

import pytest

from entrycheck.model import EdgeKind, How
from entrycheck.resolve.static_call import StaticCalls

from .conftest import last_link, reach_all


def test_update_call_carries_its_arguments(built):
    resolver = built.resolver(StaticCalls)
    assert resolver.trampolines == {built.addr("__SCT__early_hook"): "__SCT__early_hook"}
    assert set(resolver.updaters) == {built.addr("__static_call_update")}
    update, = [s for s in built.facts("xen_start_kernel").sites
               if s.how == How.DIRECT and s.target == built.addr("__static_call_update")]
    args = dict(update.args)
    assert (args["rsi"], args["rdx"]) == (built.addr("__SCT__early_hook"),
                                          built.addr("xen_early_hook"))


def test_xen_pv_reaches_the_new_target(built, graphs):
    xen = graphs["xen-pv"]
    edge = built.edge(xen, "xen_start_kernel", "xen_early_hook")
    assert (edge.kind, edge.resolver) == (EdgeKind.OPS, "static-calls")
    assert edge.via == "__SCT__early_hook (stored by xen_start_kernel)"
    assert built.image.read(edge.site, 1) == b"\xe8"  # the call of the trampoline
    assert xen.resolved["static-calls"] == 2  # the update and the call through it


def test_native_keeps_the_default(built, graphs):
    native = graphs["native"]
    names = built.reached(native)
    assert {"__SCT__early_hook", "default_early_hook"} <= names
    assert "xen_early_hook" not in names and "__static_call_update" not in names
    edge = built.edge(native, "__SCT__early_hook", "default_early_hook")
    assert (edge.kind, edge.resolver) == (EdgeKind.JUMP, "direct")
    assert built.edge(native, "early_cpu_init", "__SCT__early_hook").kind == EdgeKind.CALL


@pytest.mark.realkernel
def test_debian61_static_call(capsys, debian61):
    """xen_start_kernel calls __SCT__xen_hypercall after its own
    static_call_update(xen_hypercall, xen_hypercall_pv) (via __xen_hypercall_setfunc)."""
    image = debian61["vmlinux_nodebug"]
    chain, edge = last_link(capsys, image, "xen-pv", "xen_hypercall_pv")
    assert chain == ["startup_xen", "xen_start_kernel", "xen_hypercall_pv"]
    assert edge["kind"] == "indirect-ops" and edge["resolver"] == "static-calls"
    assert edge["via"] == "__SCT__xen_hypercall (stored by xen_start_kernel)"
    assert "xen_hypercall_pv" not in reach_all(capsys, image, "native")
