"""Data objects whose address a reached function takes or loads (`lea hypervisors(%rip)`,
`mov legacy_pic(%rip),%rax`): the functions the object holds, and those held by the
objects it points to (an array of pointers to structs of function pointers, such as
`hypervisors[]` or `cgroup_subsys[]`), may be called through it, by the kernel in its own
width. Weak edges: any other resolver's edge between the same pair replaces them."""

from __future__ import annotations

from entrycheck.model import EdgeKind, Function, FunctionFacts
from entrycheck.resolve.base import Link, Resolver
from entrycheck.resolve.structs import reachable_code

DEPTH = 2  # the object, then the objects it points to


class DataObjects(Resolver):
    name = "data-objects"
    adds = (EdgeKind.REGISTRATION,)
    reads = "data addresses the decoder saw put into registers; the objects' pointers"
    weak = True

    def links(self, func: Function, facts: FunctionFacts) -> list[Link]:
        ctx, out, seen = self.ctx, [], set()
        for address in dict.fromkeys(facts.data_addrs):
            held = reachable_code(ctx, address, DEPTH)
            if not held:
                continue
            via = f"&{ctx.object_name(address)}"
            for slot, value in held:
                if value not in seen and not func.start <= value < func.end:
                    seen.add(value)
                    out.append(Link(func.start, value, EdgeKind.REGISTRATION, ctx.image.bits,
                                    f"holds {ctx.slot_name(slot)}", via, slot=slot))
        return out
