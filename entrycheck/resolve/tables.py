"""Linker tables the kernel walks (knowledge `table_walkers`): every initcall of
`.initcall*.init` is reached from do_initcall_level (or the function it is inlined into),
every `__setup`/`early_param` handler from the parameter parsers; for tables of struct
pointers (cpu_dev, apic drivers, trace events) the functions the pointed-to structs (and
what they point to) hold."""

from __future__ import annotations

from functools import cached_property

from entrycheck.model import EdgeKind, Function, FunctionFacts
from entrycheck.resolve.base import Link, Resolver
from entrycheck.resolve.structs import reachable_code


class Tables(Resolver):
    name = "tables"
    adds = (EdgeKind.TABLE,)
    reads = "knowledge `table_walkers`, `tables`"

    @cached_property
    def _targets(self) -> dict[int, list[tuple[int, str]]]:
        """Walker address -> (target, table) for every table that has entries."""
        out: dict[int, list[tuple[int, str]]] = {}
        special = self.ctx.special
        for table, walkers in self.ctx.knowledge.table_walkers.items():
            entries = special.table(table).entries
            if not entries:
                continue
            spec = special.spec(table)
            targets = []
            for entry in entries:
                targets += [(entry[f], table) for f in spec.code_fields]
                for f in spec.struct_fields:
                    held = reachable_code(self.ctx, entry[f], spec.struct_depth)
                    targets += [(t, table) for _, t in held]
            # the first walker the image has: inner walkers are often inlined into outer
            # ones (do_initcall_level into kernel_init_freeable)
            walker = next((f for name in walkers for f in self.ctx.functions_named([name])),
                          None)
            if walker is not None:
                out.setdefault(walker.start, []).extend(targets)
        return out

    def links(self, func: Function, facts: FunctionFacts) -> list[Link]:
        bits = self.ctx.image.bits
        return [Link(func.start, target, EdgeKind.TABLE, bits, f"walks {table}", table)
                for raw, table in self._targets.get(func.start, ())
                if (target := self.ctx.code_target(raw)) is not None]
