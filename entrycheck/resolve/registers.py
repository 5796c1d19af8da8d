"""`call/jmp *%reg` (or a retpoline thunk) with a constant in the register: `mov $sym`,
`lea sym(%rip)`, a slot's contents, physical addresses mapped to virtual."""

from __future__ import annotations

from entrycheck.model import EdgeKind, Function, FunctionFacts, How
from entrycheck.resolve.base import Link, Resolver


class Registers(Resolver):
    name = "registers"
    adds = (EdgeKind.REGISTER, EdgeKind.SLOT)
    reads = "constants tracked by the decoder; knowledge `compressed_base_registers`"

    def decoder_options(self) -> dict:
        """The compressed kernel is linked at 0 and keeps its load address in a register:
        `lea rva(x)(%rbx)` is then x itself."""
        if self.ctx.kind != "compressed":
            return {}
        return {"base_registers": self.ctx.knowledge.compressed_base_registers}

    def links(self, func: Function, facts: FunctionFacts) -> list[Link]:
        out = []
        for s in facts.sites:
            if s.how != How.REGISTER or s.target is None:
                continue
            if s.slot is None:
                out.append(Link.of(s, EdgeKind.REGISTER))
            else:
                out.append(Link.of(s, EdgeKind.SLOT, via=self.ctx.slot_name(s.slot))._replace(
                    slot=s.slot))
        return out
