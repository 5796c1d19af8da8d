"""Direct calls and jumps, and fall-through into the next symbol."""

from __future__ import annotations

from entrycheck.model import EdgeKind, Function, FunctionFacts, How
from entrycheck.resolve.base import Link, Resolver


class Direct(Resolver):
    name = "direct"
    adds = (EdgeKind.CALL, EdgeKind.JUMP, EdgeKind.FALLTHROUGH)
    reads = "immediate branch targets; knowledge `noreturn`"

    def decoder_options(self) -> dict:
        return {"noreturn": self.ctx.addresses("noreturn"),
                "error_exits": self.ctx.addresses("error_exits")}

    def links(self, func: Function, facts: FunctionFacts) -> list[Link]:
        out = []
        for site in facts.sites:
            if site.how == How.DIRECT:
                out.append(Link.of(site, EdgeKind.CALL if site.call else EdgeKind.JUMP))
            elif site.how == How.FALLTHROUGH:
                out.append(Link.of(site, EdgeKind.FALLTHROUGH))
        return out
