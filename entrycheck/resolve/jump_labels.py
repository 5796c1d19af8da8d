"""Jump labels (`__jump_table`): a static key's site is a NOP or a JMP to out-of-line code of
the same function, flipped when the key changes. The code behind a site compiled as a JMP
runs as linked; behind a NOP it runs only once the key is enabled (jump_label_init() in
start_kernel patches every site to its key's state): it is decoded as conditional."""

from __future__ import annotations

from entrycheck.model import Function
from entrycheck.resolve.base import Resolver

CONDITION = "a static key enabled"
_JMP = (0xE9, 0xEB)


class JumpLabels(Resolver):
    name = "jump-labels"
    reads = "table `jump_labels`; the instruction at each site"

    def _targets(self, func: Function) -> list[tuple[int, bool]]:
        """(target, the site is compiled as a jump) for the function's sites."""
        out = []
        for site, target in self.ctx.special.jump_labels_in(func.start, func.end):
            first = self.ctx.image.read(site, 1)
            out.append((target, bool(first) and first[0] in _JMP))
        return out

    def starts(self, func: Function) -> list[int]:
        return [t for t, jumps in self._targets(func) if jumps]

    def conditional_starts(self, func: Function) -> list[tuple[int, str]]:
        return [(t, CONDITION) for t, jumps in self._targets(func) if not jumps]
