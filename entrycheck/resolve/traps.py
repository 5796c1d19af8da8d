"""Traps that come back: the `ud2` of a WARN() (a `__bug_table` entry with
BUGFLAG_WARNING) and `ud1` (7.x's `__WARN_trap`, UBSAN) report and return; the decoder
goes on after them. A `BUG()`'s `ud2` does not return, and the calls just before it are
on an error path; other `ud2`s (after a call that never returns, a speculation stop) just
end the code."""

from __future__ import annotations

from entrycheck.resolve.base import Resolver


class Traps(Resolver):
    name = "traps"
    reads = "table `bugs`"

    def decoder_options(self) -> dict:
        special = self.ctx.special
        return {"resuming_traps": special.warn_sites, "bug_traps": special.bug_sites}
