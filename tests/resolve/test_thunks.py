"""entrycheck.resolve.thunks: a call of `__x86_indirect_thunk_rax` is a register site for
%rax; the thunk stays a node (an edge that does not resolve the site)."""

from __future__ import annotations

import pytest

from entrycheck.binary.image import Image
from entrycheck.model import EdgeKind, How
from entrycheck.resolve.thunks import Thunks

from .conftest import last_link, reach_all


def test_decoder_options_name_the_register(built):
    options = built.resolver(Thunks).decoder_options()
    assert options["indirect_thunks"] == {built.addr("__x86_indirect_thunk_rax"): "rax"}
    assert options["return_thunks"] == frozenset()  # the sample has no return thunk


def test_edge_to_the_thunk_does_not_resolve_the_site(built):
    link, = built.links(Thunks, "early_cpu_init")
    assert (link.target, link.kind, link.resolves) == (
        built.addr("__x86_indirect_thunk_rax"), EdgeKind.CALL, False)
    site, = [s for s in built.facts("early_cpu_init").sites if s.thunk is not None]
    assert (site.how, site.target, site.address) == (How.REGISTER, built.addr("thunk_target_fn"),
                                                     link.site)


def test_sample_retpoline(built, graphs):
    native = graphs["native"]
    assert {"__x86_indirect_thunk_rax", "thunk_target_fn"} <= built.reached(native)
    assert built.edge(native, "early_cpu_init", "__x86_indirect_thunk_rax").resolver == "thunks"
    edge = built.edge(native, "early_cpu_init", "thunk_target_fn")
    assert (edge.kind, edge.resolver) == (EdgeKind.REGISTER, "registers")
    # the site is the call of the thunk
    assert built.image.read(edge.site, 1) == b"\xe8"


@pytest.mark.realkernel
def test_debian61_retpoline_thunk(capsys, debian61):
    """smp_call_function_many_cond: `mov smp_ops+0x50(%rip),%rax; call
    __x86_indirect_thunk_rax` reaches native_send_call_func_ipi; the slot is named by
    its member (BTF)."""
    image = debian61["vmlinux_nodebug"]
    chain, edge = last_link(capsys, image, "native", "native_send_call_func_ipi")
    assert chain[-2] == "smp_call_function_many_cond"
    assert edge["kind"] == "indirect-slot" and edge["via"] == "smp_ops.send_call_func_ipi"
    thunk = Image(image).symbol_address("__x86_indirect_thunk_rax")
    assert int(edge["instruction"].split()[-1], 16) == thunk
    assert "__x86_indirect_thunk_array" in reach_all(capsys, image, "native")  # the thunk
