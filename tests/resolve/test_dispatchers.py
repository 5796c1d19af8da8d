"""entrycheck.resolve.dispatchers: a function handed to a dispatcher runs later, reached
from the caller as a callback. The sample has no dispatcher; knowledge naming its
__static_call_update as one (argument 3, the new target) gives the callback edge."""

from __future__ import annotations

import dataclasses

from entrycheck.binary.image import Image
from entrycheck.knowledge import ArgumentUse, x86
from entrycheck.model import EdgeKind
from entrycheck.resolve.dispatchers import Dispatchers

from .conftest import builder_for


def test_constant_argument_becomes_a_callback(sample):
    knowledge = dataclasses.replace(x86(), dispatchers=(
        ArgumentUse("__static_call_update", (3,), "test"),))
    b = builder_for(Image(sample), knowledge)
    link, = b.links(Dispatchers, "xen_start_kernel")
    assert (link.target, link.kind, link.via, link.tail) == (
        b.addr("xen_early_hook"), EdgeKind.CALLBACK, "argument 3 of __static_call_update", False)
    assert b.links(Dispatchers, "early_cpu_init") == []


def test_shipped_dispatchers_find_none_in_the_sample(built):
    assert built.resolver(Dispatchers).uses == {}
    assert all(built.links(Dispatchers, name) == [] for name in ("xen_start_kernel",
                                                                 "start_kernel"))
