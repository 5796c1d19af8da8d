"""Callbacks handed to dispatchers (knowledge `dispatchers`): `kernel_thread(kernel_init,
...)`, `open_softirq(NR, fn)`, `smp_call_function(fn, ...)`: the function passed runs
later, so it is reached from the caller."""

from __future__ import annotations

from entrycheck.model import EdgeKind, Function, FunctionFacts, How
from entrycheck.resolve.base import Link, Resolver


class Dispatchers(Resolver):
    name = "dispatchers"
    adds = (EdgeKind.CALLBACK,)
    reads = "knowledge `dispatchers`; constant call arguments"

    def __init__(self, ctx):
        super().__init__(ctx)
        self.uses = {f.start: use for use in ctx.knowledge.dispatchers
                     for f in ctx.functions.all_named(use.function)}

    def links(self, func: Function, facts: FunctionFacts) -> list[Link]:
        out = []
        for site in facts.sites:
            use = self.uses.get(site.target) if site.how == How.DIRECT and site.args else None
            if use is None:
                continue
            args = dict(site.args)
            for number in use.arguments:
                target = self.ctx.code_target(args.get(self.ctx.argument_register(number)))
                if target is not None:
                    out.append(Link.of(site, EdgeKind.CALLBACK, target,
                                       f"argument {number} of {use.function}")._replace(
                                           tail=False))
        return out
