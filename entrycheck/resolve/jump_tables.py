"""`jmp *table(,%reg,8)`: a switch's jump table, whose targets the decoder follows inside
the function (no edge: the targets are the function's own code)."""

from __future__ import annotations

from entrycheck.model import EdgeKind, Function, FunctionFacts, How
from entrycheck.resolve.base import Link, Resolver


class JumpTables(Resolver):
    name = "jump-tables"
    reads = "consecutive code pointers at the table's address"

    def links(self, func: Function, facts: FunctionFacts) -> list[Link]:
        return [Link(s.address, None, EdgeKind.JUMP, s.mode, s.text) for s in facts.sites
                if s.how == How.TABLE]
