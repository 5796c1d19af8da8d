"""Alternatives (`.altinstructions`): the replacement code the kernel may patch over a site
runs instead of it, once alternative_instructions() (in start_kernel) patches it in. Calls
and jumps out of the function in replacement code are edges under that condition; the
code after the site is a decode start, jumps back into the function conditional ones. The
`static_cpu_has()` fall-back in `.altinstr_aux` (test the bit, jump to either label) is
decoded in place, so both arms of a feature test are followed."""

from __future__ import annotations

from entrycheck.decode import decoder as dec
from entrycheck.model import EdgeKind, Function, FunctionFacts
from entrycheck.resolve.base import Link, Resolver

AUX_SECTION = ".altinstr_aux"
CONDITION = "alternatives applied"


class Alternatives(Resolver):
    name = "alternatives"
    adds = (EdgeKind.ALTERNATIVE,)
    reads = "table `alternatives`; sections .altinstr_replacement, .altinstr_aux"

    def decoder_options(self) -> dict:
        sec = self.ctx.image.section(AUX_SECTION)
        return {"aux": [(sec.addr, sec.addr + sec.size)] if sec is not None else []}

    def _branches(self, repl: int, length: int, mode: int) -> list[tuple[int, int, bool, str]]:
        """(site, target, is_call, text) of the direct branches in replacement code."""
        code = self.ctx.image.read(repl, length) or b""
        out = []
        for ins in dec.decoder(mode, code, repl):
            flow = ins.flow_control
            if flow in (dec.CALL, dec.UNCONDITIONAL_BRANCH, dec.CONDITIONAL_BRANCH):
                out.append((ins.ip, ins.near_branch_target, flow == dec.CALL, dec.text(ins)))
        return out

    def starts(self, func: Function) -> list[int]:
        return [alt.site + alt.original_length
                for alt in self.ctx.special.alternatives_in(func.start, func.end)]

    def conditional_starts(self, func: Function) -> list[tuple[int, str]]:
        out = []
        for alt in self.ctx.special.alternatives_in(func.start, func.end):
            for _, target, is_call, _ in self._branches(alt.replacement, alt.length,
                                                        self.ctx.image.bits):
                if not is_call and func.start <= target < func.end:
                    out.append((target, CONDITION))
        return out

    def links(self, func: Function, facts: FunctionFacts) -> list[Link]:
        out = []
        for alt in self.ctx.special.alternatives_in(func.start, func.end):
            end = alt.replacement + alt.length
            for site, target, is_call, text in self._branches(alt.replacement, alt.length,
                                                              facts.mode):
                target = self.ctx.code_target(target) or target
                if not (func.start <= target < func.end or alt.replacement <= target < end):
                    out.append(Link(site, target, EdgeKind.ALTERNATIVE, facts.mode, text,
                                    tail=not is_call, condition=CONDITION))
        return out
