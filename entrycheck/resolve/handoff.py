"""The compressed kernel's jump into the decompressed vmlinux (`jmp *%rax` after
extract_kernel; enter_kernel in the EFI stub): recorded as a handoff, which splicing
turns into an edge to the vmlinux's native entry."""

from __future__ import annotations

from entrycheck.model import EdgeKind, Function, FunctionFacts, How
from entrycheck.resolve.base import Link, Resolver


class Handoff(Resolver):
    name = "handoff"
    adds = (EdgeKind.HANDOFF,)
    reads = "knowledge `kernel_handoff`"

    def __init__(self, ctx):
        super().__init__(ctx)
        compressed = ctx.kind == "compressed"
        k = ctx.knowledge
        self.inside = {f.start for f in ctx.functions_named(k.handoff_in)} if compressed \
            else set()
        self.after = {f.start for f in ctx.functions_named(k.handoff_after_call)} \
            if compressed else set()

    def links(self, func: Function, facts: FunctionFacts) -> list[Link]:
        if not self.inside and not self.after:  # a vmlinux: nothing hands off
            return []
        if func.start not in self.inside and not any(
                s.how == How.DIRECT and s.call and s.target in self.after for s in facts.sites):
            return []
        return [Link(s.address, None, EdgeKind.HANDOFF, s.mode, s.text) for s in facts.sites
                if s.how == How.REGISTER and not s.call and s.target is None]
