"""Per-entry call graphs, built outward from the entry by running the registered resolvers.

`GraphBuilder` holds what is shared between an image's entries (the decoder, each
function decoded once per mode and start, the resolvers and their tables); `Walk` is one
breadth-first walk from one entry: it decodes each function it reaches, hands the sites
to the resolvers in their declared order (`entrycheck.resolve.RESOLVERS`), keeps the
stores this entry's code makes (for the ops and static-call resolvers) and, at the end,
lets the resolvers adjust the graph, works out which functions return and drops the
fall-throughs that need a callee that does not.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import replace
from typing import NamedTuple

from entrycheck.binary.functions import FunctionTable
from entrycheck.binary.image import Image
from entrycheck.decode.cfg import dead_code
from entrycheck.decode.dataflow import FunctionDecoder, ImageView
from entrycheck.decode.decoder import instruction_text
from entrycheck.entries import Entry, image_kind
from entrycheck.errors import EntrycheckError
from entrycheck.knowledge import Knowledge
from entrycheck.model import (
    DEFERRED_KINDS,
    KIND_CODES,
    Edge,
    EdgeKind,
    EdgeTable,
    EntryGraph,
    Function,
    FunctionFacts,
    GraphTable,
    Hook,
    How,
    Node,
    Pruned,
    Unresolved,
)
from entrycheck.resolve import RESOLVERS
from entrycheck.resolve.base import ImageContext, Link, Resolver
from entrycheck.resolve.static_call import TRAMPOLINE_PREFIX

_TAIL = frozenset({EdgeKind.JUMP, EdgeKind.FALLTHROUGH})
_FALLTHROUGH, _OPS = KIND_CODES.index(EdgeKind.FALLTHROUGH), KIND_CODES.index(EdgeKind.OPS)
_HELD = frozenset(KIND_CODES.index(k) for k in DEFERRED_KINDS)
_UNRESOLVED_REASON = {
    How.SLOT: "the slot holds no code address and no store to it is on this path",
    How.REGISTER: "the register's value is not a constant known here",
    How.STACK: "the far return's target is not a constant known here",
    How.MEMORY: "the target is read from memory addressed by registers",
}


class GraphBuilder:
    """Builds entry graphs of one image; decoded functions are shared between entries."""

    def __init__(self, image: Image, functions: FunctionTable, knowledge: Knowledge):
        self.image = image
        self.functions = functions
        self.knowledge = knowledge
        self.ctx = ImageContext(image, functions, knowledge, image_kind(image, knowledge))
        self.resolvers: list[Resolver] = [cls(self.ctx) for cls in RESOLVERS]
        options: dict = {}
        for r in self.resolvers:
            for key, value in r.decoder_options().items():
                options[key] = value if key not in options else _merge(options[key], value)
        ctx = self.ctx
        view = ImageView(image.read, ctx.code_target, ctx.slot_value, ctx.pointer_value,
                         ctx.is_data, functions.at, functions.starting_at)
        self.decoder = FunctionDecoder(view, image.bits, **options)
        self.stateful = [r for r in self.resolvers if type(r).walk is not Resolver.walk
                         or type(r).finish is not Resolver.finish]
        self.linking = [r for r in self.resolvers if type(r).links is not Resolver.links]
        self.starting = [r for r in self.resolvers if type(r).starts is not Resolver.starts]
        self.patching = [r for r in self.resolvers
                         if type(r).conditional_starts is not Resolver.conditional_starts]
        self.weak = frozenset(r.name for r in self.resolvers if r.weak)
        self.edges = EdgeTable()  # every entry's edges, numbered once
        self.noreturn = self.ctx.addresses("noreturn")
        self.exception_entries = frozenset(
            f.start for f in functions if knowledge.is_exception_entry(f.name))
        self.thunks = frozenset(self.decoder.return_thunks) | frozenset(
            self.decoder.indirect_thunks)
        self._facts: dict[tuple[int, int, int], FunctionFacts] = {}
        self._plans: dict[tuple[int, int, int], Plan] = {}
        self._starts: dict[int, tuple[tuple[int, ...], tuple[tuple[int, str], ...]]] = {}
        self._refs: dict[tuple[int, int, int], tuple[str, ...]] = {}
        self._symbols: dict[int, str | None] = {}  # data address -> the object holding it
        self._fact_vars = {fact.where for entry in {f.entry for f in knowledge.boot_facts}
                           for fact in self.ctx.boot_facts(entry, _NO_FUNCTION).variables}
        self._fact_functions = frozenset(f.function for f in knowledge.boot_facts
                                         if f.function)
        self._decided: dict[tuple[int, int, int, str], Decided | None] = {}
        self._holders: dict[int, Function | None] = {}  # code address -> its function
        self._keys: dict[tuple[int, int, int], tuple[int, int, int]] = {}  # one of each
        self._labels: dict[int, str] = {}

    def _function_at(self, address: int) -> Function | None:
        """The function holding a code address (remembered: calls share their targets)."""
        holders = self._holders
        if address in holders:
            return holders[address]
        func = holders[address] = self.functions.at(address)
        return func

    def plan(self, func: Function, mode: int, at: int) -> Plan:
        """What a decoded function links to whatever the entry, and its unresolved sites."""
        key = (func.start, mode, at)
        plan = self._plans.get(key)
        if plan is not None:
            return plan
        facts = self.facts(func, mode, at)
        steps: list[Step] = []
        marks: list[tuple[str, Link]] = []
        linked: set[int] = set()
        at_target = self._function_at
        exceptions = self.exception_entries
        add = self.edges.add
        counted: dict[str, set[int]] = {}
        for r in self.linking:
            weak = r.weak
            for link in r.links(func, facts):
                if link.target is None:
                    marks.append((r.name, link))
                    linked.add(link.site)
                    continue
                callee = at_target(link.target)
                if callee is None:
                    continue
                kind = EdgeKind.EXCEPTION if callee.start in exceptions else link.kind
                eid = add(kind, link.site, r.name, link.text, link.via, link.condition)
                steps.append(Step(callee, link.mode, link.target, eid, link.site, weak,
                                  link.tail or link.kind in _TAIL, link.slot))
                counted.setdefault(r.name, set()).add(link.site)
                if link.resolves:
                    linked.add(link.site)
        unresolved = []
        for site in facts.sites:
            reason = _UNRESOLVED_REASON.get(site.how)
            if reason is None or site.address in linked:
                continue
            if site.target is not None:
                reason = f"no function holds the target {site.target:#x}"
            text = instruction_text(self.image.read, site.address, site.mode)
            unresolved.append(Unresolved(func.start, site.address, text, reason))
        for resolver, link in marks:
            counted.setdefault(resolver, set()).add(link.site)
        may_decide = func.name in self._fact_functions or \
            not self._fact_vars.isdisjoint(facts.data_refs)
        plan = self._plans[key] = Plan(
            facts, steps if may_decide else (), marks, unresolved,
            tuple((r, tuple(s)) for r, s in counted.items()),
            _Moves.of(func.start, steps, self._keys),
            _after_calls(facts), tuple(r for r in self.stateful if r.walks(facts)),
            may_decide)
        return plan

    def facts(self, func: Function, mode: int, at: int) -> FunctionFacts:
        """The function decoded in `mode` from `at` and the resolvers' extra starts."""
        key = (func.start, mode, at)
        facts = self._facts.get(key)
        if facts is None:
            starts = self._starts.get(func.start)
            if starts is None:
                starts = (tuple(s for r in self.starting for s in r.starts(func)),
                          tuple(s for r in self.patching for s in r.conditional_starts(func)))
                self._starts[func.start] = starts
            facts = self.decoder.decode(func, mode, (at, *starts[0]), starts[1])
            self._facts[key] = facts
        return facts

    def decided(self, func: Function, mode: int, at: int, entry: str) -> Decided | None:
        """The decoded function as `entry` runs it, where its boot facts decide branches
        (None when they decide none): the sites and stores of the live sides."""
        key = (func.start, mode, at, entry)
        if key in self._decided:
            return self._decided[key]
        facts = self.facts(func, mode, at)
        found = None
        if func.name in self._fact_functions or not self._fact_vars.isdisjoint(facts.data_refs):
            starts = self._starts[func.start]
            dead = dead_code(self.image.read, func, mode,
                             (at, *starts[0], *(s for s, _ in starts[1])), self.noreturn,
                             self.ctx.boot_facts(entry, func))
            if dead:
                live = replace(facts, sites=[s for s in facts.sites if s.address not in dead],
                               stores=[s for s in facts.stores if s.address not in dead])
                found = Decided(live, dead)
        self._decided[key] = found
        return found

    def label(self, func: Function) -> str:
        """The function's name for people (`name@file.c` where static names repeat),
        made once for all entries."""
        label = self._labels.get(func.start)
        if label is None:
            label = self._labels[func.start] = self.functions.label(func)
        return label

    def data_names(self, func: Function, mode: int, at: int) -> tuple[str, ...]:
        """Names of the data symbols a function references (cpu_tlbstate, pv_ops...)."""
        key = (func.start, mode, at)
        names = self._refs.get(key)
        if names is None:
            found = set()
            symbols = self._symbols
            for addr in self._facts[key].data_refs:
                name = symbols.get(addr, 0)
                if name == 0:
                    sym = self.image.symbol_covering(addr)
                    name = symbols[addr] = sym.name if sym is not None and sym.size else None
                if name is not None:
                    found.add(name)
            names = self._refs[key] = tuple(sorted(found))
        return names

    def build(self, entry: Entry, stop: frozenset[str] = frozenset(),
              init: Callable[[int, str], bool] | None = None) -> EntryGraph:
        """The graph of what `entry` reaches, not expanding functions named in `stop`;
        `init(address, section)` marks init code."""
        return Walk(self, entry, stop, init).run()


class Decided(NamedTuple):
    """A decoded function with the branches an entry's boot facts decide cut away."""

    facts: FunctionFacts
    dead: dict[int, tuple[int, str]]  # instruction -> (the decided branch, the fact)


_NO_FUNCTION = Function("", 0, 0, "")


class Step(NamedTuple):
    """One entry-independent edge of a decoded function, made once for every entry."""

    callee: Function
    mode: int
    target: int
    eid: int              # the edge's number in the builder's EdgeTable
    site: int
    weak: bool            # gives way to another resolver's edge between the pair
    tail: bool            # control leaves the caller for good there
    slot: int | None      # the data slot the target was read from


class _Moves(NamedTuple):
    """A list of steps as a walk applies them: the callees to visit (in order, each once),
    the edge each callee gets (the first step's, unless a weak one gives way to a later
    strong one), and the tail and slot edges; made once per plan, applied per entry."""

    visits: tuple[tuple[int, int, int], ...]  # (callee start, mode, where it is entered)
    pairs: dict[int, int]              # callee -> edge number
    weak: frozenset[tuple[int, int]]   # (caller, callee) whose edge is a weak resolver's
    tails: frozenset[tuple[int, int]]  # (caller, callee) where control leaves for good
    slot_edges: tuple[tuple[int, int, int], ...]  # (caller, callee, slot read)

    @classmethod
    def of(cls, caller: int, steps: list[Step],
           keys: dict[tuple[int, int, int], tuple[int, int, int]]) -> _Moves:
        """`keys` holds one tuple of each visit (plans share them)."""
        visits: dict[tuple[int, int, int], None] = {}
        pairs: dict[int, int] = {}
        weak: set[int] = set()
        tails, slots = set(), []
        for callee, mode, target, edge, _, is_weak, tail, slot in steps:
            start = callee.start
            key = (start, mode, target)
            visits[keys.setdefault(key, key)] = None
            if start not in pairs:
                pairs[start] = edge
                if is_weak:
                    weak.add(start)
            elif not is_weak and start in weak:
                pairs[start] = edge
                weak.discard(start)
            if tail:
                tails.add((caller, start))
            if slot is not None:
                slots.append((caller, start, slot))
        return cls(tuple(visits), pairs, frozenset((caller, b) for b in weak),
                   frozenset(tails), tuple(slots))


class Plan(NamedTuple):
    """A decoded function with its entry-independent edges and its unresolved sites."""

    facts: FunctionFacts
    steps: list[Step] | tuple[()]  # kept where boot facts may cut some (`may_decide`)
    marks: list[tuple[str, Link]]   # sites accounted for without an edge (handoffs...)
    unresolved: list[Unresolved]
    counted: tuple[tuple[str, tuple[int, ...]], ...]  # (resolver, sites it resolved)
    moves: _Moves
    after_calls: tuple[tuple[int, int], ...]  # fall-throughs after a trailing call: (next
    # function, callee): they hold only if the callee returns
    stateful: tuple[Resolver, ...]  # the per-entry resolvers this function concerns
    may_decide: bool  # reads a boot fact: an entry's facts may decide its branches


def _after_calls(facts: FunctionFacts) -> tuple[tuple[int, int], ...]:
    """(next function, callee) of each fall-through after a trailing call: it holds only
    if the callee returns."""
    return tuple((s.target, s.after_call) for s in facts.sites
                 if s.how == How.FALLTHROUGH and s.after_call is not None)


def _merge(a, b):
    """Two resolvers' values for one decoder option."""
    if isinstance(a, dict):
        return {**a, **b}
    if isinstance(a, frozenset | set):
        return frozenset(a) | frozenset(b)
    return (*a, *b)


class Walk:
    """One breadth-first walk from an entry; resolvers add edges through it."""

    def __init__(self, builder: GraphBuilder, entry: Entry, stop: frozenset[str],
                 init: Callable[[int, str], bool] | None = None):
        self.b = builder
        self.ctx = builder.ctx
        self.entry = entry
        self.stop = {f.start for f in builder.ctx.functions_named(stop)}
        self.init = init
        self.nodes: dict[int, Node] = {}
        self.succ: dict[int, dict[int, int]] = defaultdict(dict)  # caller -> callee -> edge
        self.queue: deque[tuple[Function, int, int]] = deque()
        self.seen: set[tuple[int, int, int]] = set()
        self.unresolved: dict[tuple[int, int], Unresolved] = {}
        self.linked: set[tuple[int, int]] = set()  # (caller, site) with an edge
        self.weak: set[tuple[int, int]] = set()    # edges a stronger resolver may replace
        self.slot_edges: list[tuple[int, int, int]] = []  # (caller, callee, slot read)
        self.resolved: dict[str, set[int]] = defaultdict(set)
        self.handoffs: list[Unresolved] = []
        self.tails: set[tuple[int, int]] = set()
        self.after_calls: list[tuple[int, int, int]] = []  # (caller, next function, callee)
        self.stores: dict[int, dict[int, int]] = defaultdict(dict)  # slot -> value -> storer
        self.watchers: dict[int, list[Callable[[int, int], None]]] = defaultdict(list)
        self.pruned: dict[tuple[int, int], Pruned] = {}
        self.root = 0
        self._scratch: dict[str, dict] = defaultdict(dict)

    # -- for resolvers -------------------------------------------------------------

    def link(self, caller: int, link: Link, resolver: str,
             callee: Function | None = None) -> bool:
        """Add caller -> the function holding the link's target; False when none does."""
        if link.target is None:
            self.resolved[resolver].add(link.site)
            if link.kind == EdgeKind.HANDOFF and all(h.site != link.site for h in self.handoffs):
                text = instruction_text(self.ctx.image.read, link.site, link.mode)
                self.handoffs.append(Unresolved(caller, link.site, text,
                                                "enters the decompressed vmlinux"))
            return True
        callee = callee or self.ctx.functions.at(link.target)
        if callee is None:
            return False
        self._visit(callee, link.mode, link.target)
        out = self.succ[caller]
        pair = (caller, callee.start)
        if callee.start not in out or (pair in self.weak and resolver not in self.b.weak):
            kind = EdgeKind.EXCEPTION if callee.start in self.b.exception_entries else link.kind
            out[callee.start] = self.b.edges.add(kind, link.site, resolver, link.text,
                                                 link.via, link.condition, link.storer)
            if resolver in self.b.weak:
                self.weak.add(pair)
            else:
                self.weak.discard(pair)
        if link.tail or link.kind in _TAIL:
            self.tails.add((caller, callee.start))
        if link.slot is not None:
            self.slot_edges.append((caller, callee.start, link.slot))
        if link.resolves:
            self.resolved[resolver].add(link.site)
            self.linked.add((caller, link.site))
            self.unresolved.pop((caller, link.site), None)
        return True

    def edge(self, number: int) -> Edge:
        """An edge of this walk's `succ` by its number."""
        return self.b.edges.edge(number)

    def kind(self, number: int) -> EdgeKind:
        """The kind of an edge of this walk's `succ` by its number."""
        return KIND_CODES[self.b.edges.kind_code(number)]

    def count(self, resolver: str, site: int) -> None:
        """A site the resolver accounted for without adding an edge."""
        self.resolved[resolver].add(site)

    def scratch(self, resolver: str) -> dict:
        """Per-walk state of one resolver (resolvers themselves are shared by entries)."""
        return self._scratch[resolver]

    def store(self, slot: int, value: int, by: int) -> None:
        """This entry's code stores code address `value` into `slot`."""
        if value in self.stores[slot]:
            return
        self.stores[slot][value] = by
        for watcher in list(self.watchers.get(slot, ())):
            watcher(value, by)

    def watch(self, slot: int, callback: Callable[[int, int], None]) -> None:
        """Call `callback(value, storer)` for every store into `slot`, past and future."""
        self.watchers[slot].append(callback)
        for value, by in list(self.stores.get(slot, {}).items()):
            callback(value, by)

    def name(self, address: int) -> str:
        func = self.ctx.functions.starting_at(address)
        return self.ctx.functions.label(func) if func else f"{address:#x}"

    # -- the walk ------------------------------------------------------------------

    def run(self) -> EntryGraph:
        root = self.ctx.functions.at(self.entry.address)
        if root is None:
            raise EntrycheckError(f"entry {self.entry.name} at {self.entry.address:#x} "
                                  "is not code")
        self.root = root.start
        self._visit(root, self.entry.mode, self.entry.address)
        while self.queue:
            func, mode, at = self.queue.popleft()
            self._expand(func, mode, at)
        for r in self.b.resolvers:
            r.finish(self)
        decoded = {a for a, n in self.nodes.items() if n.returns}
        self._propagate_returns()
        while self._drop_falls_after_noreturn():
            # a dropped fall-through no longer makes its caller return: again from the
            # decoded facts (which may drop further fall-throughs)
            for a, n in self.nodes.items():
                n.returns = a in decoded
            self._propagate_returns()
        self._prune()
        self.watchers.clear()  # its callbacks hold the walk: no cycle left to collect
        if self.init is not None:
            for node in self.nodes.values():
                node.init = self.init(node.address, node.section)
        return EntryGraph(
            self.entry.name, self.root, GraphTable.from_walk(self.nodes, self.succ, self.b.edges),
            unresolved=sorted(self.unresolved.values(), key=lambda u: (u.function, u.site)),
            resolved={name: len(sites) for name, sites in sorted(self.resolved.items())},
            handoffs=self.handoffs, hooks=self._hooks(),
            pruned=[p for p in sorted(self.pruned.values())
                    if p.caller in self.nodes and p.callee not in self.succ.get(p.caller, {})])

    def _visit(self, func: Function, mode: int, at: int) -> None:
        key = (func.start, mode, at)
        if key in self.seen:
            return
        self.seen.add(key)
        if func.start not in self.nodes:
            self.nodes[func.start] = Node(func.start, self.b.label(func), func.section, mode,
                                          self.ctx.kind, func.start in self.b.thunks)
        if func.start not in self.stop or func.start == self.root:
            self.queue.append((func, mode, at))

    def _expand(self, func: Function, mode: int, at: int) -> None:
        plan = self.b.plan(func, mode, at)
        facts, moves, marks, unresolved = plan.facts, plan.moves, plan.marks, plan.unresolved
        after_calls, stateful = plan.after_calls, plan.stateful
        caller = func.start
        if plan.may_decide:
            decided = self.b.decided(func, mode, at, self.entry.name)
            if decided is not None:
                facts, dead = decided.facts, decided.dead
                for step in plan.steps:
                    cut = dead.get(step.site)
                    if cut is not None:
                        self.pruned.setdefault((caller, step.callee.start), Pruned(
                            caller, step.callee.start, step.site, *cut))
                moves = _Moves.of(caller, [s for s in plan.steps if s.site not in dead],
                                  self.b._keys)
                marks = [(r, link) for r, link in marks if link.site not in dead]
                unresolved = [u for u in unresolved if u.site not in dead]
                after_calls = _after_calls(facts)
                stateful = self.b.stateful
        node = self.nodes[caller]
        node.returns = node.returns or facts.returns
        refs = self.b.data_names(func, mode, at)
        if refs:
            node.refs = tuple(sorted({*node.refs, *refs})) if node.refs else refs
        if facts.privileged:
            node.privileged = tuple(sorted({*node.privileged, *facts.privileged}))
        seen, function = self.seen, self.ctx.functions.starting_at
        for key in moves.visits:
            if key not in seen:
                self._visit(function(key[0]), key[1], key[2])
        out = self.succ[caller]
        if not out:
            out.update(moves.pairs)
            self.weak.update(moves.weak)
        else:  # expanded before from another start: edges already there keep their place
            weak_pairs = self.weak
            for start, edge in moves.pairs.items():
                pair = (caller, start)
                if start not in out:
                    out[start] = edge
                    if pair in moves.weak:
                        weak_pairs.add(pair)
                elif pair in weak_pairs and pair not in moves.weak:
                    out[start] = edge
                    weak_pairs.discard(pair)
        self.tails.update(moves.tails)
        self.slot_edges.extend(moves.slot_edges)
        for resolver, link in marks:
            self.link(caller, link, resolver)
        for resolver, sites in plan.counted:
            self.resolved[resolver].update(sites)
        for target, callee in after_calls:
            self.after_calls.append((caller, target, callee))
        claimed: set[int] = set()
        for r in stateful:
            claimed.update(r.walk(self, func, facts))
        for u in unresolved:
            if u.site not in claimed and (caller, u.site) not in self.linked:
                self.unresolved.setdefault((caller, u.site), u)

    # -- after the walk ------------------------------------------------------------

    def _propagate_returns(self) -> None:
        """A function returns if it has a `ret`, or tail-jumps to one that returns; one
        the knowledge says never returns does not (start_kernel ends in a `ret` after
        arch_call_rest_init, which it never reaches)."""
        nodes = self.nodes
        for a in self.b.noreturn:
            if a in nodes:
                nodes[a].returns = False
        callers: dict[int, list[int]] = defaultdict(list)
        for a, b in self.tails:
            callers[b].append(a)
        work = [a for a, n in nodes.items() if n.returns]
        while work:
            b = work.pop()
            for a in callers.get(b, ()):
                node = nodes.get(a)
                if node is not None and not node.returns and a not in self.b.noreturn:
                    node.returns = True
                    work.append(a)

    def _drop_falls_after_noreturn(self) -> bool:
        """A fall-through after a trailing call holds only if the callee returns; True when
        one was dropped."""
        dropped = False
        for caller, after, callee in self.after_calls:
            target = self.ctx.functions.at(callee)
            node = self.nodes.get(target.start) if target else None
            if node is not None and node.returns:
                continue
            edge = self.succ.get(caller, {}).get(after)
            if edge is not None and self.b.edges.kind_code(edge) == _FALLTHROUGH:
                del self.succ[caller][after]
                self.tails.discard((caller, after))
                dropped = True
        return dropped

    def _hooks(self) -> list[Hook]:
        """The slots and static calls the entry's code calls through, with their targets
        (a trampoline's own jump is its default target), one row per reader: the readers
        of a slot may lie in different layers (an early exception fix-up, a normal-flow
        caller)."""
        hooks: dict[tuple[int, int, int], Hook] = {}
        reads = list(self.slot_edges)
        reads += [(a, b, a) for a, node in self.nodes.items()
                  if node.name.startswith(TRAMPOLINE_PREFIX) for b in self.succ.get(a, ())]
        for caller, callee, slot in reads:
            edge = self.succ.get(caller, {}).get(callee)
            if edge is None or caller not in self.nodes or (slot, caller, callee) in hooks:
                continue
            kind = self.b.edges.kind_code(edge)
            if kind in _HELD:
                continue  # a struct holding the slot (registered, its address taken) is no call
            storer = self.b.edges.storer_of(edge) if kind == _OPS else None
            hooks[slot, caller, callee] = Hook(slot, self.ctx.slot_name(slot), caller, callee,
                                               storer)
        return sorted(hooks.values())

    def _prune(self) -> None:
        """Drop what the root no longer reaches (after edges were removed)."""
        keep = {self.root}
        queue = deque([self.root])
        while queue:
            node = queue.popleft()
            for succ in self.succ.get(node, ()):
                if succ not in keep:
                    keep.add(succ)
                    queue.append(succ)
        if len(keep) == len(self.nodes):
            return
        self.nodes = {a: n for a, n in self.nodes.items() if a in keep}
        self.unresolved = {k: u for k, u in self.unresolved.items() if u.function in keep}
        self.handoffs = [h for h in self.handoffs if h.function in keep]
