"""Jump labels (`__jump_table`): a static key's site is a NOP or a JMP to out-of-line code of
the same function; jump_label_init() (start_kernel) and every change of the key patch it to
a JMP exactly when the key's state differs from the entry's branch bit (kernel/jump_label.c
jump_label_type: enabled ^ branch). The code behind a site compiled as a JMP runs as
linked; behind a NOP it runs only once the site is patched: it is decoded as conditional,
on "static key K enabled" (branch bit clear) or "disabled" (set). So is the code after a
site compiled as a JMP, which runs once the site becomes a NOP: on K enabled when the bit
is set (`static_branch_likely()` of a false key: sched_clock_cpu's per-CPU clock once
sched_clock_init() enables sched_clock_running), disabled when it is clear."""

from __future__ import annotations

from entrycheck.model import Function
from entrycheck.resolve.base import Resolver

STATE = "static key {key} {state}"
_JMP_LENGTH = {0xE9: 5, 0xEB: 2}  # jmp rel32, jmp rel8


class JumpLabels(Resolver):
    name = "jump-labels"
    reads = "table `jump_labels`; the instruction at each site"

    _recent: tuple[int, list] = (-1, [])  # the last function's sites: both kinds of start

    def _sites(self, func: Function) -> list[tuple[int, int, int, bool, int]]:
        """(site, target, key, branch bit, the length of the jump the site is compiled
        as, 0 for a NOP) for the function's sites (read once for `starts` and
        `conditional_starts`, which the graph asks one after the other)."""
        if self._recent[0] == func.start:
            return self._recent[1]
        out = []
        for site, target, key, branch in self.ctx.special.jump_labels_in(func.start, func.end):
            first = self.ctx.image.read(site, 1)
            out.append((site, target, key, branch,
                        _JMP_LENGTH.get(first[0], 0) if first else 0))
        self._recent = (func.start, out)
        return out

    def starts(self, func: Function) -> list[int]:
        return [target for _, target, _, _, jump in self._sites(func) if jump]

    def conditional_starts(self, func: Function) -> list[tuple[int, str]]:
        """Behind a NOP: the target, once the key differs from the branch bit; after a
        JMP: the next instruction, once the key equals it."""
        out = []
        for site, target, key, branch, jump in self._sites(func):
            enabled = branch if jump else not branch
            out.append((site + jump if jump else target,
                        STATE.format(key=self.ctx.object_name(key),
                                     state="enabled" if enabled else "disabled")))
        return out
