"""Structs of function pointers handed to a function (`platform_driver_register(&drv)`,
`register_console(&con)`, `register_filesystem(&fs_type)`, notifier blocks): the
functions the struct's initializer holds are reached through the registering call, in
the image's own width (they are called later, as address-taken callees are)."""

from __future__ import annotations

from entrycheck.model import EdgeKind, Function, FunctionFacts, How
from entrycheck.resolve.base import Link, Resolver
from entrycheck.resolve.structs import code_pointers


class Registrations(Resolver):
    name = "registrations"
    adds = (EdgeKind.REGISTRATION,)
    reads = "constant call arguments that point into data; the data's relocations"

    def links(self, func: Function, facts: FunctionFacts) -> list[Link]:
        image, out = self.ctx.image, []
        bits = image.bits
        low, high = self.ctx.extent
        for site in facts.sites:
            if site.how != How.DIRECT or not site.call or not site.args:
                continue
            for _, value in site.args:
                if not low <= value < high:  # a plain number (flags, sizes, ids)
                    continue
                section = image.section_at(value)
                if section is None or section.executable:
                    continue
                held = code_pointers(self.ctx, value)
                if not held:
                    continue
                callee = self.ctx.functions.starting_at(site.target)
                via = f"{callee.name if callee else 'call'}(&{self.ctx.object_name(value)})"
                out += [Link(site.address, t, EdgeKind.REGISTRATION, bits, site.text, via,
                             slot=slot) for slot, t in held]
        return out
