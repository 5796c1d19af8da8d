"""Ops tables per entry: a slot's static initializer gives its target, unless code on the
entry's own path stores into the slot (xen_start_kernel writing xen_* handlers into
pv_ops and x86_init): then the stored targets replace it for that entry."""

from __future__ import annotations

from entrycheck.model import EdgeKind, Function, FunctionFacts, How
from entrycheck.resolve.base import Link, Resolver


class Ops(Resolver):
    name = "ops"
    adds = (EdgeKind.OPS,)
    reads = "constant code addresses the entry's code stores into data slots"

    def walk(self, walk, func: Function, facts: FunctionFacts) -> list[int]:
        for store in facts.stores:
            walk.store(store.slot, store.value, func.start)
        claimed = []
        for site in facts.sites:
            if site.slot is None or site.how not in (How.SLOT, How.REGISTER):
                continue
            if site.target is not None:  # a static target: overridden if this entry stores
                walk.scratch(self.name).setdefault("static", []).append(
                    (func.start, site.target, site.slot))
            walk.watch(site.slot, self._stored(walk, func.start, site))
            if walk.stores.get(site.slot):
                claimed.append(site.address)
        return claimed

    def _stored(self, walk, caller: int, site):
        slot = site.slot

        def stored(value: int, by: int) -> None:
            via = f"{self.ctx.slot_name(slot)} (stored by {walk.name(by)})"
            walk.link(caller, Link.of(site, EdgeKind.OPS, value, via), self.name)

        return stored

    def finish(self, walk) -> None:
        """Strong update: drop a slot's static target where this entry's code overwrote
        the slot with something else."""
        for caller, target, slot in walk.scratch(self.name).get("static", ()):
            stored = walk.stores.get(slot)
            callee = self.ctx.functions.at(target)
            if not stored or callee is None:
                continue
            values = {f.start for v in stored if (f := self.ctx.functions.at(v))}
            edge = walk.succ.get(caller, {}).get(callee.start)
            if edge is not None and callee.start not in values and edge.kind != EdgeKind.OPS:
                del walk.succ[caller][callee.start]
