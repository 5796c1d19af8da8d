"""Retpoline and return thunks: a return thunk stands for `ret`, an indirect thunk for
`call/jmp *%reg`. The thunk stays a node of its own; the decoder turns a call of an
indirect thunk into a register site (resolved by `registers` when the value is known)."""

from __future__ import annotations

from entrycheck.model import EdgeKind, Function, FunctionFacts, How
from entrycheck.resolve.base import Link, Resolver


class Thunks(Resolver):
    name = "thunks"
    adds = (EdgeKind.CALL, EdgeKind.JUMP)
    reads = "knowledge `return_thunks`, `indirect_thunk_prefixes`"

    def decoder_options(self) -> dict:
        prefixes = self.ctx.knowledge.indirect_thunk_prefixes
        indirect = {}
        for func in self.ctx.functions:
            for name in (func.name, *func.aliases):
                prefix = next((p for p in prefixes if name.startswith(p)), None)
                if prefix is not None:
                    indirect[func.start] = name[len(prefix):]
        return {"return_thunks": self.ctx.addresses("return_thunks"),
                "indirect_thunks": indirect}

    def links(self, func: Function, facts: FunctionFacts) -> list[Link]:
        """The thunk itself runs: an edge to it, which does not resolve the site."""
        return [Link(s.address, s.thunk, EdgeKind.CALL if s.call else EdgeKind.JUMP, s.mode,
                     s.text, resolves=False) for s in facts.sites
                if s.how == How.REGISTER and s.thunk is not None]
