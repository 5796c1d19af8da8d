"""Exception handlers a function installs (knowledge `installs`): the early IDT's page-fault
handler runs on the first touch of boot_params in copy_bootdata."""

from __future__ import annotations

from entrycheck.model import EdgeKind, Function, FunctionFacts
from entrycheck.resolve.base import Link, Resolver


class Idt(Resolver):
    name = "idt"
    adds = (EdgeKind.EXCEPTION,)
    reads = "knowledge `installs`"

    def __init__(self, ctx):
        super().__init__(ctx)
        self.installs = {f.start: ctx.functions_named(handlers)
                         for name, handlers in ctx.knowledge.installs.items()
                         for f in ctx.functions.all_named(name)}

    def links(self, func: Function, facts: FunctionFacts) -> list[Link]:
        handlers = self.installs.get(func.start)
        if not handlers:
            return []
        return [Link(func.start, h.start, EdgeKind.EXCEPTION, self.ctx.image.bits,
                     f"installs {h.name}") for h in handlers]
