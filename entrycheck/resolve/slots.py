"""`call/jmp *slot`: a data slot whose contents (by relocation, else the bytes) are a code
address: initial_code, the `jmp *0f(%rip)` slot of 6.12's head code, pv_ops entries."""

from __future__ import annotations

from entrycheck.model import EdgeKind, Function, FunctionFacts, How
from entrycheck.resolve.base import Link, Resolver


class Slots(Resolver):
    name = "slots"
    adds = (EdgeKind.SLOT,)
    reads = "relocations and contents of data slots"

    def links(self, func: Function, facts: FunctionFacts) -> list[Link]:
        return [Link.of(s, EdgeKind.SLOT, via=self.ctx.slot_name(s.slot))._replace(slot=s.slot)
                for s in facts.sites if s.how == How.SLOT and s.target is not None]
