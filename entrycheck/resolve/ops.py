"""Ops tables per entry: a slot's static initializer gives its target, and code on the
entry's path that stores a function into the slot adds that target (xen_start_kernel
writing xen_* handlers into pv_ops and x86_init). A store replaces the static target
(a strong update) when it is decisive: it runs whenever its function runs (decode/cfg.py)
and its function runs whenever the entry boots (it is on the entry's spine: the chain of
calls that always happen from the entry), and only for the reads that may not run before
it (resolve/order.py). Other stores only add: sme_early_init sets
x86_init.resources.dmi_setup on SEV-SNP guests only."""

from __future__ import annotations

from collections import deque

from entrycheck.decode.cfg import Facts, always_through, must_execute
from entrycheck.model import CONTROL_KINDS, EdgeKind, Function, FunctionFacts, How
from entrycheck.resolve.base import Link, Resolver
from entrycheck.resolve.order import Before, before_store, linked

# the spine follows only transfers with one target (and calls through a register holding
# a constant): an indirect site that always runs may still reach any one of its targets
# (`call *hook`: native_init or xen_init)
_SPINE_EDGES = frozenset({EdgeKind.CALL, EdgeKind.JUMP, EdgeKind.FALLTHROUGH, EdgeKind.FAR})


class Ops(Resolver):
    name = "ops"
    adds = (EdgeKind.OPS,)
    reads = "constant code addresses the entry's code stores into data slots"

    def __init__(self, ctx):
        super().__init__(ctx)
        self.noreturn = ctx.addresses("noreturn")
        self.dead_ends = ctx.addresses("error_exits")
        self.fault_layer = self.dead_ends | ctx.addresses("report_functions")
        self._musts: dict[tuple[int, int, int, str | None], frozenset[int]] = {}
        self._sites: dict[int, tuple[FunctionFacts, list]] = {}

    def must(self, func: Function, mode: int, start: int, entry: str | None) -> frozenset[int]:
        """The instructions of `func`, entered at `start`, that run whenever it runs, as
        `entry`'s boot facts decide its branches (None: a function no fact concerns, the
        same for every entry)."""
        key = (func.start, mode, start, entry)
        found = self._musts.get(key)
        if found is None:
            facts = self._facts(func, entry) if entry is not None \
                else Facts(preserving=self.ctx.preserving)
            found = self._musts[key] = must_execute(
                self.ctx.image.read, func, mode, start, self.noreturn, self.dead_ends, facts)
        return found

    def _facts(self, func: Function, entry: str) -> Facts:
        return self.ctx.boot_facts(entry, func)

    def walks(self, facts: FunctionFacts) -> bool:
        return bool(facts.stores or self._read_sites(facts))

    def _read_sites(self, facts: FunctionFacts) -> list:
        """The function's calls and jumps through a slot (kept per decode that has some)."""
        key = id(facts)
        found = self._sites.get(key)
        if found is None or found[0] is not facts:
            sites = [s for s in facts.sites if s.slot is not None
                     and s.how in (How.SLOT, How.REGISTER)]
            if not sites:
                return sites
            found = self._sites[key] = (facts, sites)
        return found[1]

    def walk(self, walk, func: Function, facts: FunctionFacts) -> list[int]:
        stores = walk.scratch(self.name).setdefault("stores", [])
        for store in facts.stores:
            stores.append((store.slot, store.value, func.start, store.address))
            walk.store(store.slot, store.value, func.start)
        claimed = []
        for site in self._read_sites(facts):
            walk.watch(site.slot, self._stored(walk, func.start, site))
            if walk.stores.get(site.slot):
                claimed.append(site.address)
        return claimed

    def _stored(self, walk, caller: int, site):
        slot = site.slot

        def stored(value: int, by: int) -> None:
            via = f"{self.ctx.slot_name(slot)} (stored by {walk.name(by)})"
            link = Link.of(site, EdgeKind.OPS, value, via)
            walk.link(caller, link._replace(storer=by, slot=slot), self.name)

        return stored

    def finish(self, walk) -> None:
        """Strong update: drop a slot's static target where a decisive store of this
        entry's put something else there before the read. Once some are dropped, less
        may run before the other stores: again until nothing more is dropped."""
        scratch = walk.scratch(self.name)
        stores = scratch.get("stores", ())
        if not stores:
            return
        spine = self._spine(walk, {by for _, _, by, _ in stores})
        by_storer: dict[tuple[int, int], dict[int, set[int]]] = {}
        stored: dict[int, set[int]] = {}  # slot -> what any store of this entry puts there
        for slot, value, by, address in stores:
            stored.setdefault(slot, set()).add(self._start(value))
            if by in spine:
                by_storer.setdefault((slot, by), {}).setdefault(value, set()).add(address)
        storers: dict[int, list[tuple[int, frozenset[int]]]] = {}  # decisive ones
        for (slot, by), values in by_storer.items():
            if self._always_stores(walk, by, values):
                storers.setdefault(slot, []).append(
                    (by, frozenset(a for addresses in values.values() for a in addresses)))
        while self._strong_updates(walk, spine, storers, stored):
            scratch.pop("before", None)
            scratch.pop("prefixes", None)
        # a read the stores replaced is no hook row, even where the caller keeps the
        # callee for another reason (x86_init_noop, the default of many x86_init slots)
        walk.slot_edges = [(caller, callee, slot) for caller, callee, slot in walk.slot_edges
                           if slot not in storers or callee in stored[slot]
                           or not self._replaced(walk, spine, storers, stored, caller, callee,
                                                 (slot, False))]

    def _start(self, value: int) -> int:
        target = self.ctx.functions.at(value)
        return target.start if target else value

    def _strong_updates(self, walk, spine: dict[int, tuple[int, int] | None],
                        storers: dict[int, list[tuple[int, frozenset[int]]]],
                        stored: dict[int, set[int]]) -> bool:
        """Drop the static targets that decisive stores replace before their reads; True
        when one was dropped. A caller keeps a callee that any other way leads to (a
        direct call, a slot no store decides, a value some store put there)."""
        dropped = False
        for caller, callee in dict.fromkeys((c, d) for c, d, slot in walk.slot_edges
                                            if slot in storers):
            edge = walk.succ.get(caller, {}).get(callee)
            if edge is None or walk.kind(edge) == EdgeKind.OPS:
                continue
            ways = self._ways(walk, caller).get(callee, ())
            if ways and all(self._replaced(walk, spine, storers, stored, caller, callee, way)
                            for way in ways):
                del walk.succ[caller][callee]
                dropped = True
        for slot in storers:  # a static call's trampoline: its default
            out = walk.succ.get(slot, {}) if slot in walk.nodes else {}
            defaults = [c for c, e in out.items() if c not in stored[slot]
                        and walk.kind(e) in (EdgeKind.JUMP, EdgeKind.CALL)]
            if defaults and not all(slot in b.whole
                                    for b in self._befores(walk, spine, storers[slot])):
                for callee in defaults:
                    del out[callee]
                dropped = True
        return dropped

    def _replaced(self, walk, spine: dict[int, tuple[int, int] | None],
                  storers: dict[int, list[tuple[int, frozenset[int]]]],
                  stored: dict[int, set[int]], caller: int, callee: int,
                  way: tuple[int | None, bool]) -> bool:
        """Is this way from caller to callee (a slot read, or a deferred link through a
        slot) replaced by the decisive stores into its slot?"""
        slot, deferred = way
        return slot in storers and callee not in stored[slot] and (
            deferred or not self._read_first(walk, caller, slot,
                                             self._befores(walk, spine, storers[slot])))

    def _befores(self, walk, spine: dict[int, tuple[int, int] | None],
                 storers: list[tuple[int, frozenset[int]]]) -> list[Before]:
        return [self._before(walk, spine, by, sites) for by, sites in storers]

    def _decodes(self, walk, addr: int) -> list[FunctionFacts]:
        """Every decode of the function the walk made (modes, starts)."""
        index = walk.scratch(self.name).get("decodes")
        if index is None:
            index = walk.scratch(self.name)["decodes"] = {}
            for start, mode, at in walk.seen:
                index.setdefault(start, []).append((mode, at))
        func = self.ctx.functions.starting_at(addr)
        return [walk.b.plan(func, mode, at).facts for mode, at in index.get(addr, ())] \
            if func is not None else []

    def _ways(self, walk, caller: int) -> dict[int, list[tuple[int | None, bool]]]:
        """callee -> (the slot read or None, a deferred link) for every link of the
        caller's decodes (kept per walk)."""
        memo = walk.scratch(self.name).setdefault("ways", {})
        found = memo.get(caller)
        if found is None:
            found = memo[caller] = {}
            func = self.ctx.functions.starting_at(caller)
            for facts in self._decodes(walk, caller):
                for link, callee in linked(walk, func, facts):
                    found.setdefault(callee, []).append((link.slot, link.kind not in CONTROL_KINDS))
        return found

    def _before(self, walk, spine: dict[int, tuple[int, int] | None], by: int,
                sites: frozenset[int]) -> Before:
        """What may run before `by` stores at one of `sites` (kept per walk)."""
        memo = walk.scratch(self.name).setdefault("before", {})
        found = memo.get((by, sites))
        if found is None:
            chain, link = [(by, sites)], spine[by]
            while link is not None:
                caller, site = link
                chain.append((caller, frozenset((site,))))
                link = spine[caller]
            found = memo[by, sites] = before_store(
                walk, chain[::-1], self.noreturn, self.fault_layer,
                walk.scratch(self.name).setdefault("prefixes", {}))
        return found

    def _read_first(self, walk, caller: int, slot: int, befores: list[Before]) -> bool:
        """May `caller`'s read of `slot` run before every decisive store into it?"""
        reads = [s.address for facts in self._decodes(walk, caller) for s in facts.sites
                 if s.slot == slot]
        return all(b.may_read(caller, reads) for b in befores)

    def _always_stores(self, walk, by: int, values: dict[int, set[int]]) -> bool:
        """Does `by` store into the slot whenever it runs (one store that always runs, or
        stores on every path between them)?"""
        sites = frozenset(a for addresses in values.values() for a in addresses)
        if sites & self._always(walk, by):
            return True
        func, node = self.ctx.functions.starting_at(by), walk.nodes.get(by)
        if func is None or node is None or by == walk.root:
            return False
        return always_through(self.ctx.image.read, func, node.mode, by, sites, self.noreturn,
                              self.dead_ends, self._facts(func, walk.entry.name))

    def _always(self, walk, addr: int) -> frozenset[int]:
        """The instructions of a function that run whenever it runs, through its mode
        switches (pvh_start_xen's 32-bit start, then after its far jump the 64-bit part
        that calls xen_prepare_pvh)."""
        func = self.ctx.functions.starting_at(addr)
        node = walk.nodes.get(addr)
        if func is None or node is None:
            return frozenset()
        start = walk.entry.address if addr == walk.root else addr
        plan = walk.b.plan(func, node.mode, start)
        entry = walk.entry.name if plan.may_decide else None
        must = self.must(func, node.mode, start, entry)
        for site, target, mode in plan.facts.switches:
            if site in must:
                must = must | self.must(func, mode, target, entry)
        return must

    def _constant(self, walk, addr: int, site: int) -> bool:
        """Is `site` a call or jump through a register that holds one constant (`mov
        $xen_prepare_pvh, %rax; call *%rax`), in every decode of the function?"""
        sites = [s for facts in self._decodes(walk, addr) for s in facts.sites
                 if s.address == site]
        return bool(sites) and all(s.how == How.REGISTER and s.slot is None
                                   and s.target is not None for s in sites)

    def _spine(self, walk, storers: set[int]) -> dict[int, tuple[int, int] | None]:
        """Functions that run whenever the entry boots: the root, and the callees of
        must-execute call sites of spine functions, each with (caller, call site) on its
        way from the root; as far as it takes to tell which of the `storers` are on it
        (the search stops once all are)."""
        spine: dict[int, tuple[int, int] | None] = {walk.root: None}
        queue = deque([walk.root])
        missing = storers - spine.keys()
        while queue and missing:
            addr = queue.popleft()
            calls = [(callee, edge) for callee, number in walk.succ.get(addr, {}).items()
                     if callee not in spine and not (edge := walk.edge(number)).condition
                     and (edge.kind in _SPINE_EDGES or (edge.kind == EdgeKind.REGISTER
                          and self._constant(walk, addr, edge.site)))]
            if not calls:
                continue  # no must-execute set needed: nothing it could add
            must = self._always(walk, addr)
            for callee, edge in calls:
                if edge.site in must:
                    spine[callee] = (addr, edge.site)
                    queue.append(callee)
                    missing.discard(callee)
        return spine
