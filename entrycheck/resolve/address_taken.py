"""Functions whose address a reached function takes (`lea fn(%rip)`, `mov $fn`) and hands
on: stored into a struct, passed to a function that keeps it (INIT_WORK, timer_setup,
notifier and hotplug callbacks), stored into a table read through an index
(`softirq_vec[nr].action`); a struct copy's pointers are the source object's (the
data-objects resolver's). Sound for the callbacks no dispatcher entry names; the edge
says the address was taken, not that it is called there. The callee runs in the image's
own width (the 64-bit kernel calls it later), whatever the mode of the code that took
its address (the 32-bit PVH entry takes xen_prepare_pvh's). Stores into the hook variables
(x86_init, pv_ops...) are the ops resolver's: there a target counts where code calls
through its slot."""

from __future__ import annotations

from functools import cached_property

from entrycheck.model import EdgeKind, Function, FunctionFacts
from entrycheck.resolve.base import Link, Resolver


class AddressTaken(Resolver):
    name = "address-taken"
    adds = (EdgeKind.CALLBACK,)
    reads = "code addresses the decoder saw put into registers"
    weak = True

    @cached_property
    def _image_bases(self) -> frozenset[int]:
        """Where the kernel image starts (`_text`, `_stext`: knowledge `image_bases`): code
        there is the head, entered by the boot loader; its address as a constant is the
        image's base (`__pa_symbol(_text)` in setup_arch, text_poke's `_stext + rel_addr`),
        not a callback."""
        image = self.ctx.image
        found = (image.symbol_address(name)
                 for name in self.ctx.knowledge.names("image_bases", self.ctx.kind))
        return frozenset(a for a in found if a is not None)

    def links(self, func: Function, facts: FunctionFacts) -> list[Link]:
        out = []
        stored = [s.value for s in facts.stores
                  if not s.copied and not self._hook_slot(s.slot)]
        bases = self._image_bases
        for target in dict.fromkeys([*facts.code_refs, *stored]):
            callee = self.ctx.functions.starting_at(target)
            if callee is not None and not func.start <= target < func.end \
                    and target not in bases:
                out.append(Link(func.start, target, EdgeKind.CALLBACK, self.ctx.image.bits,
                                f"takes the address of {callee.name}", "address taken"))
        return out

    def _hook_slot(self, slot: int) -> bool:
        sym = self.ctx.image.symbol_covering(slot)
        return sym is not None and sym.name in self.ctx.knowledge.hook_variables
