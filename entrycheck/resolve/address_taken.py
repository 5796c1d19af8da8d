"""Functions whose address a reached function takes (`lea fn(%rip)`, `mov $fn`) and hands
on: stored into a struct, passed to a function that keeps it (INIT_WORK, timer_setup,
notifier and hotplug callbacks). Sound for the callbacks no dispatcher entry names; the
edge says the address was taken, not that it is called there."""

from __future__ import annotations

from entrycheck.model import EdgeKind, Function, FunctionFacts
from entrycheck.resolve.base import Link, Resolver


class AddressTaken(Resolver):
    name = "address-taken"
    adds = (EdgeKind.CALLBACK,)
    reads = "code addresses the decoder saw put into registers"
    weak = True

    def links(self, func: Function, facts: FunctionFacts) -> list[Link]:
        out = []
        for target in dict.fromkeys(facts.code_refs):
            callee = self.ctx.functions.starting_at(target)
            if callee is not None and not func.start <= target < func.end:
                out.append(Link(func.start, target, EdgeKind.CALLBACK, facts.mode,
                                f"takes the address of {callee.name}", "address taken"))
        return out
