"""What may run before a store on an entry's spine. A store that always runs replaces a
slot's old target only for the reads that come after it; a read that may come first still
sees the old target (the ops resolver keeps that edge).

The spine is a chain of direct calls that always happen: root -> F1 -> ... -> the storer.
Before the storer's first store, each chain function runs from its start up to its call of
the next (the storer: up to the store), and what that code calls, as far as control goes.
Where no boot fact decides a branch, both sides may run; a callee whose call site is not
known, and a read outside the decoded code, may come first.

Assumed, not proven: callbacks whose address is taken (kthreads, notifiers, initcalls,
registered structs), exception handlers and the fault layer (panic(), WARN reports) do not
read a hook before its store, so the closure does not follow those edges, and a struct that
holds a slot is no read in boot order. Synchronous callbacks (on_each_cpu, a hotplug
state's startup callback) would break the assumption."""

from __future__ import annotations

from collections import deque
from collections.abc import Collection, Iterable, Iterator
from typing import TYPE_CHECKING, NamedTuple

from entrycheck.decode.cfg import runs_before
from entrycheck.model import CONTROL_KINDS, Function, FunctionFacts

if TYPE_CHECKING:
    from entrycheck.graph import Walk
    from entrycheck.resolve.base import Link




class Before(NamedTuple):
    """What may run before one store: whole functions, and the early parts of the chain
    functions leading to it (instruction addresses), with what was decoded of them."""

    whole: frozenset[int]
    partial: dict[int, frozenset[int]]
    decoded: dict[int, frozenset[int]]

    def may_read(self, caller: int, sites: Collection[int]) -> bool:
        """May `caller`, reading at one of `sites` (none known: anywhere), run before the
        store?"""
        if caller in self.whole:
            return True
        early = self.partial.get(caller)
        if early is None:
            return False
        decoded = self.decoded[caller]
        return not sites or any(s in early or s not in decoded for s in sites)


Prefixes = dict[tuple[tuple[int, frozenset[int]], ...],
                tuple[frozenset[int], frozenset[int], frozenset[int]]]


def before_store(walk: Walk, chain: list[tuple[int, frozenset[int]]],
                 noreturn: frozenset[int], fault_layer: frozenset[int],
                 prefixes: Prefixes) -> Before:
    """What may run before the chain's last function reaches one of its stop sites; `chain`
    is (function, where it calls the next or stores) from the root on; the `fault_layer`
    is not followed. `prefixes` keeps, per chain prefix, its last function's early part,
    what was decoded of it and what may run before its stop (stores share prefixes)."""
    early: dict[int, frozenset[int]] = {}
    decoded: dict[int, frozenset[int]] = {}
    whole: frozenset[int] = frozenset()
    key: tuple[tuple[int, frozenset[int]], ...] = ()
    for addr, stops in chain:
        key += ((addr, stops),)
        found = prefixes.get(key)
        if found is None:
            region, seen, callees = _early_part(walk, addr, stops, noreturn)
            found = prefixes[key] = (region, seen, _closure(walk, callees - fault_layer,
                                                            fault_layer, whole))
        early[addr], decoded[addr], whole = found
    return Before(whole, {a: r for a, r in early.items() if a not in whole}, decoded)


def _early_part(walk: Walk, addr: int, stops: frozenset[int], noreturn: frozenset[int]
                ) -> tuple[frozenset[int], frozenset[int], set[int]]:
    """A chain function's instructions that may run before `stops`, through its mode
    switches, the instructions decoded, and the callees it may reach from the first."""
    ctx = walk.ctx
    func, node = ctx.functions.starting_at(addr), walk.nodes[addr]
    start = walk.entry.address if addr == walk.root else addr
    plan = walk.b.plan(func, node.mode, start)
    facts = ctx.boot_facts(walk.entry.name, func)
    region, decoded = runs_before(ctx.image.read, func, node.mode, start, stops, noreturn,
                                  facts)
    pending = list(plan.facts.switches)
    while pending:
        site, target, mode = pending.pop()
        if site in region and target not in region:
            more, more_decoded = runs_before(ctx.image.read, func, mode, target, stops,
                                             noreturn, facts._replace(registers=()))
            region, decoded = region | more, decoded | more_decoded
            pending.extend(walk.b.plan(func, mode, target).facts.switches)
    sites: dict[int, set[int]] = {}
    linked: set[int] = set()
    for site, callee, control in _site_pairs(walk, func, plan.facts):
        linked.add(callee)
        if control:
            sites.setdefault(callee, set()).add(site)
    callees = set()
    for callee, number in walk.succ.get(addr, {}).items():
        if callee in sites:
            if any(s in region or s not in decoded for s in sites[callee]):
                callees.add(callee)
        elif callee not in linked and walk.kind(number) in CONTROL_KINDS:
            callees.add(callee)  # no link says where: it may come first
    return region, decoded, callees


def linked(walk: Walk, func: Function, facts: FunctionFacts) -> Iterator[tuple[Link, int]]:
    """Each link the linking resolvers make from a decode of the function, with the start
    of the function its target is in."""
    at = walk.ctx.functions.at
    for resolver in walk.b.linking:
        for link in resolver.links(func, facts):
            if link.target is not None and (callee := at(link.target)) is not None:
                yield link, callee.start


def _site_pairs(walk: Walk, func: Function, facts: FunctionFacts
                ) -> Iterable[tuple[int, int, bool]]:
    """(site, callee, a control transfer) for every way the function's code leads to a
    callee: the linking resolvers' links, and the values this entry stored into the slots
    and static calls its sites read."""
    for link, callee in linked(walk, func, facts):
        yield link.site, callee, link.kind in CONTROL_KINDS
    at = walk.ctx.functions.at
    for site in facts.sites:
        for key in {site.slot, site.target} - {None}:
            for value in walk.stores.get(key, ()):
                if (callee := at(value)) is not None:
                    yield site.address, callee.start, True


def _closure(walk: Walk, starts: set[int], fault_layer: frozenset[int],
             known: frozenset[int]) -> frozenset[int]:
    """`known` (closed already) and what control transfers reach from `starts`, with
    them, short of the `fault_layer`."""
    seen = set(starts - known)
    queue = deque(seen)
    while queue:
        for callee, number in walk.succ.get(queue.popleft(), {}).items():
            if callee not in seen and callee not in known and callee not in fault_layer \
                    and walk.kind(number) in CONTROL_KINDS:
                seen.add(callee)
                queue.append(callee)
    return known | seen
