"""Static calls: a call to a `__SCT__name` trampoline runs the trampoline's target, which a
constant `static_call_update()` on the entry's own path retargets (xen_start_kernel ->
xen_hypercall_pv for __SCT__xen_hypercall); an update that always runs on the entry's
spine replaces the trampoline's default target (the ops resolver's strong update)."""

from __future__ import annotations

from entrycheck.model import EdgeKind, Function, FunctionFacts, How
from entrycheck.resolve.base import Link, Resolver

TRAMPOLINE_PREFIX = "__SCT__"
STATIC_CALL_KEY_PREFIX = "__SCK__"  # the key: the trampoline's current target, as data


class StaticCalls(Resolver):
    name = "static-calls"
    adds = (EdgeKind.OPS,)
    reads = "knowledge `static_call_updates`; constant call arguments"

    def __init__(self, ctx):
        super().__init__(ctx)
        self.updaters = {f.start: use for use in ctx.knowledge.static_call_updates
                         for f in ctx.functions.all_named(use.function)}
        self.trampolines = {f.start: f.name for f in ctx.functions
                            if f.name.startswith(TRAMPOLINE_PREFIX)}
        self._sites: dict[int, tuple[FunctionFacts, list]] = {}

    def _relevant(self, facts: FunctionFacts) -> list:
        """The function's direct sites into trampolines or updaters (kept per decode)."""
        key = id(facts)
        found = self._sites.get(key)
        if found is None or found[0] is not facts:
            sites = [s for s in facts.sites if s.how == How.DIRECT
                     and (s.target in self.trampolines or s.target in self.updaters)]
            if not sites:
                return sites
            found = self._sites[key] = (facts, sites)
        return found[1]

    def walks(self, facts: FunctionFacts) -> bool:
        return bool(self._relevant(facts))

    def walk(self, walk, func: Function, facts: FunctionFacts) -> list[int]:
        for site in self._relevant(facts):
            if site.target in self.trampolines:
                walk.watch(site.target, self._stored(walk, func.start, site))
            use = self.updaters.get(site.target)
            if use is not None and site.args:
                args = dict(site.args)
                tramp_reg, target_reg = (self.ctx.argument_register(n) for n in use.arguments)
                tramp = self.ctx.code_target(args.get(tramp_reg))
                target = self.ctx.code_target(args.get(target_reg))
                if tramp is not None and target is not None:
                    walk.store(tramp, target, func.start)
                    walk.count(self.name, site.address)
                    # the ops resolver's strong update retargets the trampoline when this
                    # update always runs on the entry's spine
                    walk.scratch("ops").setdefault("stores", []).append(
                        (tramp, target, func.start, site.address))
        return []

    def _stored(self, walk, caller: int, site):
        name = self.trampolines[site.target]

        def stored(value: int, by: int) -> None:
            via = f"{name} (stored by {walk.name(by)})"
            link = Link.of(site, EdgeKind.OPS, value, via)
            walk.link(caller, link._replace(storer=by, slot=site.target), self.name)

        return stored
