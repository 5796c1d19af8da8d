"""Jump labels (`__jump_table`): a static key's NOP becomes a jump to out-of-line code of
the same function when the key flips; that code is decoded too."""

from __future__ import annotations

from entrycheck.model import Function
from entrycheck.resolve.base import Resolver


class JumpLabels(Resolver):
    name = "jump-labels"
    reads = "table `jump_labels`"

    def starts(self, func: Function) -> list[int]:
        return self.ctx.special.jump_label_targets_in(func.start, func.end)
