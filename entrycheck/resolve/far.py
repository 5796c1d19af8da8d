"""Far jumps and far returns (`ljmp $sel,$addr`, `push; lretq`): mode switches, such as
the PVH entry's jump into long mode and startup_64's `lretq` through initial_code."""

from __future__ import annotations

from entrycheck.model import EdgeKind, Function, FunctionFacts, How
from entrycheck.resolve.base import Link, Resolver


class Far(Resolver):
    name = "far"
    adds = (EdgeKind.FAR,)
    reads = "constants on the stack, far pointers"

    def links(self, func: Function, facts: FunctionFacts) -> list[Link]:
        return [Link.of(s, EdgeKind.FAR, via=self.ctx.slot_name(s.slot) if s.slot else None)
                for s in facts.sites if s.how == How.STACK and s.target is not None]
