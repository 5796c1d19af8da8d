"""Jump labels (`__jump_table`): a static key's site is a NOP or a JMP to out-of-line code of
the same function, flipped when the key changes. The code behind a site compiled as a JMP
runs as linked; behind a NOP it runs only once the site is patched (jump_label_init() in
start_kernel patches every site to its key's state): it is decoded as conditional. So is
the code after a site compiled as a JMP, which runs once the site becomes a NOP
(sched_clock_cpu's per-CPU clock, once sched_clock_init() enables sched_clock_running).
The condition names the key (the entry's self-relative key field, flags masked off)."""

from __future__ import annotations

from entrycheck.model import Function
from entrycheck.resolve.base import Resolver

CONDITION = "static key {key} enabled"
PATCHED_OUT = "static key {key}'s jump patched out"
_JMP_LENGTH = {0xE9: 5, 0xEB: 2}  # jmp rel32, jmp rel8


class JumpLabels(Resolver):
    name = "jump-labels"
    reads = "table `jump_labels`; the instruction at each site"

    def _sites(self, func: Function) -> list[tuple[int, int, int, int]]:
        """(site, target, key, the length of the jump the site is compiled as, 0 for a
        NOP) for the function's sites."""
        out = []
        for site, target, key in self.ctx.special.jump_labels_in(func.start, func.end):
            first = self.ctx.image.read(site, 1)
            out.append((site, target, key, _JMP_LENGTH.get(first[0], 0) if first else 0))
        return out

    def starts(self, func: Function) -> list[int]:
        return [target for _, target, _, jump in self._sites(func) if jump]

    def conditional_starts(self, func: Function) -> list[tuple[int, str]]:
        return [(site + jump, PATCHED_OUT.format(key=self.ctx.object_name(key))) if jump
                else (target, CONDITION.format(key=self.ctx.object_name(key)))
                for site, target, key, jump in self._sites(func)]
