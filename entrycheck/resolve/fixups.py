"""Exception fixups (`__ex_table`): where a faulting instruction of the function resumes
(a user copy's error path) is code that runs."""

from __future__ import annotations

from entrycheck.model import Function
from entrycheck.resolve.base import Resolver


class Fixups(Resolver):
    name = "fixups"
    reads = "table `exception_fixups`"

    def starts(self, func: Function) -> list[int]:
        return self.ctx.special.fixups_in(func.start, func.end)
