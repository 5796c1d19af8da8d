"""One function decoded by recursive descent, with constants tracked in registers and on
the stack, into the sites and effects the resolvers read.

Decoding starts at the function's start (or where an entry enters it) and at the extra
starts the resolvers give (jump-label targets, code after an alternative site), follows
jumps that stay inside the function, and ends a run at a return, a jump out, a call that
does not return or a trap that does not come back. Within a run a few values are known:
an immediate or a `lea` of a symbol moved into a register, a slot's contents loaded into
one, `call 1f; 1: pop %reg` (the code's own address), `push; lret`, and adjustments by a
constant (`sub phys_base`). They resolve `mov $sym,%rax; jmp *%rax`, retpoline thunk
calls, far returns into long mode, and give the constant arguments of direct calls.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import cache

from iced_x86 import Code, Instruction, OpKind, Register, RegisterInfo

from entrycheck.decode import decoder as dec
from entrycheck.model import Function, FunctionFacts, How, Site, Store

MASK64 = dec.MASK64
MAX_TABLE = 512          # entries of a jump table read at most
MAX_AUX = 64             # bytes of one .altinstr_aux snippet
MAX_INSTRUCTIONS = 1 << 18  # per function: a bound on hostile or huge inputs
MAX_REDECODES = 8  # decodes of one function to settle its joins, then none carries registers

Regs = dict[int, tuple[int | None, int | None]]  # register -> (value, slot it came from)
Work = tuple[int, int, Regs | None]  # a run to decode: start, mode, registers known there

ARG_REGISTERS = {64: ("rdi", "rsi", "rdx", "rcx", "r8", "r9"), 32: ("eax", "edx", "ecx")}


@cache
def _register_tables() -> tuple[list[int], list[int], list[str]]:
    """Per iced Register value: its full register, its size, the full register's name."""
    count = 1 + max(getattr(Register, n) for n in dir(Register) if n.isupper())
    names = {getattr(Register, n): n.lower() for n in dir(Register) if n.isupper()}
    full, size, name = [], [], []
    for reg in range(count):
        if reg == Register.NONE:
            full.append(0)
            size.append(0)
            name.append("")
            continue
        info = RegisterInfo(reg)
        full.append(info.full_register)
        size.append(info.size)
        name.append(names.get(info.full_register, ""))
    return full, size, name


_REG_BY_NAME = {n.lower(): getattr(Register, n) for n in dir(Register) if n.isupper()}


def full_register(register: int) -> int:
    """The full iced register of a register (`edi` -> `rdi`)."""
    return _register_tables()[0][register]


def register_size(register: int) -> int:
    """Bytes of an iced register (`ah` 1, `eax` 4)."""
    return _register_tables()[1][register]


def memory_size(size: int) -> int:
    """Bytes of an iced MemorySize (an operand's `memory_size`)."""
    return _memory_sizes()[size]


def register_named(name: str) -> int:
    """The full iced register for a name such as `rax` or `eax`."""
    return _register_tables()[0][_REG_BY_NAME[name]]


class ImageView:
    """What decoding needs from an image and its function table (tests pass stubs)."""

    def __init__(self, read: Callable[[int, int], bytes | None],
                 code_target: Callable[[int | None], int | None],
                 slot_value: Callable[[int], int | None],
                 pointer_value: Callable[[int], int | None],
                 is_data: Callable[[int], bool],
                 function_at: Callable[[int], Function | None],
                 function_starting_at: Callable[[int], Function | None]):
        self.read = read
        self.code_target = code_target
        self.slot_value = slot_value          # a code address held in a slot
        self.pointer_value = pointer_value    # any image address held in a slot
        self.is_data = is_data
        self.function_at = function_at
        self.function_starting_at = function_starting_at


class FunctionDecoder:
    """Decodes functions of one image into `FunctionFacts`."""

    def __init__(self, view: ImageView, bits: int, *, noreturn: Iterable[int] = (),
                 return_thunks: Iterable[int] = (), indirect_thunks: dict[int, str] | None = None,
                 base_registers: Iterable[str] = (), resuming_traps: Iterable[int] = (),
                 aux: Iterable[tuple[int, int]] = (), error_exits: Iterable[int] = (),
                 bug_traps: Iterable[int] = ()):
        self.view = view
        self.bits = bits
        self.noreturn = frozenset(noreturn)
        self.return_thunks = frozenset(return_thunks)
        self.indirect_thunks = {a: register_named(r) for a, r in (indirect_thunks or {}).items()}
        self.base_registers = frozenset(register_named(r) for r in base_registers)
        self.resuming_traps = frozenset(resuming_traps)
        self.aux = tuple(aux)  # out-of-line code that jumps back into its caller
        self.error_exits = frozenset(error_exits)
        self.bug_traps = frozenset(bug_traps)  # ud2 of BUG(): the calls before report it
        self._cat = dec.categories()
        self._kinds = [-1] * len(self._cat)  # code -> flow << 8 | category, filled as seen
        self._full, self._size, self._name = _register_tables()
        self._arg_regs = {m: tuple(register_named(r) for r in regs)
                          for m, regs in ARG_REGISTERS.items()}

    def kind_of(self, ins: Instruction) -> int:
        """Flow control and category of an instruction's code, packed for the loop."""
        return ins.flow_control << 8 | self._cat[ins.code]

    def decode(self, func: Function, mode: int, starts: Iterable[int] = (),
               conditional: Iterable[tuple[int, str]] = ()) -> FunctionFacts:
        """Facts of `func` decoded in `mode` from `starts` (default: its start), then from
        `conditional` starts (code that runs only once patched in: a static key's target):
        the sites only they reach carry the condition."""
        data = self.view.read(func.start, func.end - func.start) or b""
        starts, conditional = list(starts) or [func.start], list(conditional)
        plain: set[int] | None = set()  # branch targets decoded without the branch's registers
        for _ in range(MAX_REDECODES):
            facts, joins = self._decode_once(func, mode, data, starts, conditional, plain)
            if not joins - plain:
                return facts
            plain |= joins
        return self._decode_once(func, mode, data, starts, conditional, None)[0]

    def _decode_once(self, func: Function, mode: int, data: bytes, starts: list[int],
                     conditional: list[tuple[int, str]], plain: set[int] | None
                     ) -> tuple[FunctionFacts, set[int]]:
        """One decode; the branch targets where another way in disagrees with the
        registers the branch carried (`plain` ones start with none; None: none do)."""
        facts = FunctionFacts(func.start, mode)
        run = _Run(self, func, data, facts, plain)
        self._drain(run, [(s, mode, None) for s in starts])
        for start, condition in conditional:
            first = len(facts.sites)
            self._drain(run, [(start, mode, None)])
            for i in range(first, len(facts.sites)):
                facts.sites[i] = facts.sites[i]._replace(condition=condition)
        return facts, run.joins

    @staticmethod
    def _drain(run: _Run, work: list[Work]) -> None:
        func, facts = run.func, run.facts
        while work and facts.instructions < MAX_INSTRUCTIONS:
            start, run_mode, regs = work.pop()
            if not func.start <= start < func.end:
                continue
            if start in run.seen:
                run.arrive(start, regs)
            else:
                run.go(start, run_mode, work, regs)


class _Run:
    """Straight-line decoding state for one function.

    A branch target starts with the registers known at the branch (the taken side of
    `test %rax,%rax; jne 1f; ... 1: call *%rax` calls what %rax was loaded with). A run is
    decoded once, by the first way in; every later way in (another branch, a fall-through
    into its code) is compared with what the run started with, and where they may differ
    the target is a join: the function is decoded again with the joins starting plain.
    Code a run falls into keeps the run's registers even where a branch joins it later
    (`x = g; if (c) x = h; x()` laid out with the assignment on the fall-through): an
    approximation of the run-based decoding, older than the carried registers."""

    def __init__(self, d: FunctionDecoder, func: Function, data: bytes, facts: FunctionFacts,
                 plain: set[int] | None):
        self.d, self.func, self.data, self.facts = d, func, data, facts
        self.seen: dict[int, int] = {}  # instruction -> the start of the run that decoded it
        self.decoders = {}
        self.plain = plain  # targets that start without the branch's registers (None: all)
        self.carried: dict[int, Regs] = {}  # run start -> the registers it started with
        self.joins: set[int] = set()

    def _carried(self, regs: Regs) -> Regs | None:
        """What a branch carries to its target: registers that hold a code address or a
        slot's contents (what a call through the register would need), not plain numbers
        (constants for arguments do not matter past a branch, and would only make joins)."""
        code_target = self.d.view.code_target
        kept = {r: held for r, held in regs.items()
                if held[1] is not None or code_target(held[0]) is not None}
        return kept or None

    def arrive(self, ip: int, regs: Regs | None) -> None:
        """Another way into decoded code at `ip`, with `regs`: a join, unless it agrees with
        what the run there started with (or the run started with nothing known)."""
        if not self.carried:
            return
        owner = self.seen[ip]
        carried = self.carried.get(owner)
        if carried is None:
            return
        if ip == owner and regs and all(regs.get(r) == held for r, held in carried.items()):
            return
        self.joins.add(owner)

    def _decoder(self, mode: int):
        if mode not in self.decoders:
            self.decoders[mode] = dec.decoder(mode, self.data, self.func.start)
        return self.decoders[mode]

    def go(self, start: int, mode: int, work: list[Work], known: Regs | None = None) -> None:
        """Decode from `start` until the run ends, with the registers `known` there (see
        the class); queue local branch targets on `work` with the registers at the branch.

        The loop is the hot path of the whole analysis: it reads as few fields of each
        instruction as it can (its code, through one table, gives flow and category)."""
        d, func, facts, seen = self.d, self.func, self.facts, self.seen
        kinds, full = d._kinds, d._full
        data_refs = facts.data_refs
        decoder = self._decoder(mode)
        decoder.position = start - func.start
        decoder.ip = start
        if known and self.plain is not None and start not in self.plain:
            self.carried[start] = dict(known)
            regs: Regs = known  # register -> (value, slot)
        else:
            regs = {}
        stack: list[tuple[int | None, int | None]] = []
        last = None
        end = func.end
        suffix = len(facts.sites)  # sites since the last conditional branch
        quiet = not d.base_registers  # no register holds a base whatever the code does
        ip = start
        before = len(seen)
        try:
            for ins in decoder:
                if ip in seen:
                    self.arrive(ip, regs)
                    return
                seen[ip] = start
                nxt = ip + ins.len
                code = ins.code
                kind = kinds[code]
                if kind < 0:
                    kind = kinds[code] = d.kind_of(ins)
                if kind < _FLOW:  # flow NEXT: `kind` is the category bits
                    last = None
                    ip = nxt
                    if not kind:  # PLAIN
                        if regs and ins.op_count and ins.op0_kind == _REGISTER:
                            regs.pop(full[ins.op0_register], None)
                        continue
                    if not regs and quiet and not kind & _LOUD:
                        # nothing known, no constant coming in: at most a data reference
                        if ins.memory_displ_size < 2:  # no address named either
                            if not kind & _STACK:
                                continue
                            if not stack or stack[-1][0] is None:
                                if ins.mnemonic == _PUSH:
                                    stack.append(_UNKNOWN)
                                elif stack:
                                    stack.pop()
                                continue
                        elif not kind & _MOVES:
                            base = ins.memory_base
                            if base in (_RIP, _EIP):
                                data_refs.append(ins.ip_rel_memory_address & MASK64)
                                continue
                            self._refer(ins, mode, regs)
                            continue
                    if kind == _MEMORY:  # an operand that may name data, nothing tracked
                        self._refer(ins, mode, regs)
                        if regs and ins.op0_kind == _REGISTER and not (
                                ins.mnemonic in _SELF_TESTS and ins.op1_kind == _REGISTER
                                and ins.op1_register == ins.op0_register):
                            regs.pop(full[ins.op0_register], None)  # `and %eax,%eax`: flags
                    elif kind & _FAR:  # far jmp through memory
                        self._far(ins, mode, stack, work)
                        return
                    else:
                        self._effects(ins, kind, mode, regs, stack)
                    continue
                flow, bits = kind >> 8, kind & 0xFF
                ip = nxt
                if flow in _DIRECT_FLOWS:
                    if bits & _FAR:  # ljmp $sel, $addr
                        self._far(ins, mode, stack, work)
                        return
                    target = ins.near_branch_target
                    if mode == 32:  # .code32 of a 64-bit kernel: keep the upper bits
                        target = ((nxt - ins.len) & ~0xFFFFFFFF) | (target & 0xFFFFFFFF)
                    if flow == _CALL:
                        if target == nxt:  # `call 1f; 1: pop %reg`: the code's own address
                            stack.append((nxt, None))
                            continue
                        if self._call(ins, target, mode, regs):
                            if target in d.error_exits:  # `pr_err(...); panic(...)`
                                self._doomed(suffix, len(facts.sites) - 1)
                            return
                        regs.clear()
                        last = target
                        continue
                    last = None
                    if flow == _CONDITIONAL:
                        suffix = len(facts.sites) + (not func.start <= target < end)
                    if func.start <= target < end:
                        if flow == _UNCONDITIONAL:
                            if target in seen:
                                self.arrive(target, regs)
                            else:
                                work.append((target, mode, self._carried(regs)))
                            return
                        work.append((target, mode, self._carried(regs) if regs else None))
                        continue
                    aux_end = next((hi for lo, hi in d.aux if lo <= target < hi), None)
                    if aux_end is not None:
                        self._aux(target, aux_end, mode, work)
                    else:
                        self._jump_out(ins, target, mode, regs)
                    if flow == _UNCONDITIONAL:
                        return
                    continue
                if flow == dec.INDIRECT_CALL or flow == dec.INDIRECT_BRANCH:
                    last = None
                    if bits & _FAR:
                        self._far(ins, mode, stack, work)
                        return
                    call = flow == dec.INDIRECT_CALL
                    if self._indirect(ins, call, mode, regs, work):
                        return
                    if call:
                        regs.clear()
                    continue
                if flow == dec.RETURN:
                    if bits & _FAR:
                        self._far(ins, mode, stack, work)
                    else:
                        facts.returns = True
                    return
                # INTERRUPT (int3, int n), EXCEPTION (ud0/ud1/ud2), XBEGIN...: a trap either
                # comes back (WARN sites in __bug_table, int3 self-tests) or ends the run
                last = None
                if code in _INT3_CODES:
                    # a breakpoint that comes back (int3_selftest), unless it is padding
                    if nxt >= end or self.data[nxt - func.start] == 0xCC:
                        return
                    continue
                if flow == dec.EXCEPTION and nxt - ins.len not in d.resuming_traps \
                        and code not in _UD1_CODES:
                    if nxt - ins.len in d.bug_traps:
                        self._doomed(suffix, len(facts.sites))
                    return  # ud2 of BUG(), an invalid opcode: no way on (WARN's ud1 returns)
                continue
        finally:
            facts.instructions += len(seen) - before
        # ran off the end of the data: into the next symbol, if one starts right there
        self._off_end(decoder, mode, last)

    def _doomed(self, first: int, end: int) -> None:
        """The sites first..end lead, with no branch between, to BUG() or panic(): they are
        on an error path (printing the error, dumping state)."""
        sites = self.facts.sites
        for i in range(first, end):
            sites[i] = sites[i]._replace(doomed=True)

    def _aux(self, start: int, end: int, mode: int, work: list) -> None:
        """`.altinstr_aux` code (static_cpu_has()'s slow path: test the feature bit, jump to
        either label): its jumps back into the function are local branch targets."""
        func = self.func
        data = self.d.view.read(start, min(MAX_AUX, end - start))  # the last may be short
        if not data:
            return
        for ins in dec.decoder(mode, data, start):
            flow = ins.flow_control
            if flow == dec.CONDITIONAL_BRANCH or flow == dec.UNCONDITIONAL_BRANCH:
                target = ins.near_branch_target
                if func.start <= target < func.end:
                    work.append((target, mode, None))
                if flow == dec.UNCONDITIONAL_BRANCH:
                    return
            elif flow != dec.NEXT:
                return

    def _off_end(self, decoder, mode: int, last_call: int | None) -> None:
        func, facts = self.func, self.facts
        nxt = func.start + decoder.position
        if not func.end <= nxt < func.end + 16:
            return
        after = self.d.view.function_starting_at(func.end)
        if after is None:
            return
        if last_call is None:
            facts.sites.append(Site(nxt, False, How.FALLTHROUGH, after.start, mode))
        elif last_call not in self.d.noreturn:
            # asm that ends in a call falls through only if the callee returns
            facts.sites.append(Site(nxt, False, How.FALLTHROUGH, after.start, mode,
                                    after_call=last_call))

    def _call(self, ins: Instruction, target: int, mode: int, regs: dict) -> bool:
        """A direct call; True when the run ends (the callee does not return)."""
        d, facts = self.d, self.facts
        target &= MASK64
        if target in d.return_thunks:
            facts.sites.append(Site(ins.ip, True, How.DIRECT, target, mode))
            return False
        if target in d.indirect_thunks:
            self._through_register(ins, True, d.indirect_thunks[target], mode, regs, target)
            return False
        resolved = d.view.code_target(target) or target
        facts.sites.append(Site(ins.ip, True, How.DIRECT, resolved, mode,
                                args=self._args(mode, regs)))
        return target in d.noreturn or resolved in d.noreturn

    def _jump_out(self, ins: Instruction, target: int, mode: int, regs: dict) -> None:
        d, facts = self.d, self.facts
        target &= MASK64
        if target in d.return_thunks:
            facts.returns = True
            facts.sites.append(Site(ins.ip, False, How.DIRECT, target, mode))
            return
        if target in d.indirect_thunks:
            self._through_register(ins, False, d.indirect_thunks[target], mode, regs, target)
            return
        resolved = d.view.code_target(target) or target
        facts.sites.append(Site(ins.ip, False, How.DIRECT, resolved, mode))
        if d.view.function_at(resolved) is None:
            facts.returns = True  # leaves for code we cannot see: assume it returns

    def _args(self, mode: int, regs: dict) -> tuple[tuple[str, int], ...]:
        """Constant argument registers at a call; function addresses among them escape."""
        if not regs:
            return ()
        names, view = self.d._name, self.d.view
        args = tuple((names[r], regs[r][0]) for r in self.d._arg_regs[mode]
                     if r in regs and regs[r][0] is not None)
        for r in self.d._arg_regs[mode]:
            if r in regs and regs[r][1] is None:
                target = view.code_target(regs[r][0])
                if target is not None:
                    self.facts.code_refs.append(target)
        return args

    def _through_register(self, ins: Instruction, call: bool, reg: int, mode: int,
                          regs: dict, thunk: int | None = None) -> None:
        held = regs.get(reg)
        value = self.d.view.code_target(held[0]) if held else None
        slot = held[1] if held else None
        self.facts.sites.append(Site(ins.ip, call, How.REGISTER, value, mode, slot,
                                     args=self._args(mode, regs) if call else (), thunk=thunk))
        if value is None and not call:
            self.facts.returns = True  # an unknown tail call may return

    def _indirect(self, ins: Instruction, call: bool, mode: int, regs: dict,
                  work: list) -> bool:
        """`call/jmp *%reg` or `*mem`; True when the run ends."""
        d, func, facts = self.d, self.func, self.facts
        if ins.op0_kind == OpKind.REGISTER:
            reg = self.d._full[ins.op0_register]
            held = regs.get(reg)
            local = d.view.code_target(held[0]) if held else None
            if local is not None and func.start <= local < func.end and not call:
                work.append((local, mode, None))
                return True
            self._through_register(ins, call, reg, mode, regs)
            return not call
        slot = self._memory(ins, mode, regs)[0]
        if slot is not None:
            facts.data_refs.append(slot)
            value = d.view.slot_value(slot)
            facts.sites.append(Site(ins.ip, call, How.SLOT, value, mode, slot))
            facts.returns |= value is None and not call
            return not call
        if not call and ins.memory_index != Register.NONE and ins.memory_base == Register.NONE:
            targets = self._jump_table(ins, mode)
            if targets:
                work.extend((t, mode, None) for t in targets)
                facts.sites.append(Site(ins.ip, False, How.TABLE, None, mode))
                return True
        facts.sites.append(Site(ins.ip, call, How.MEMORY, None, mode))
        facts.returns |= not call
        return not call

    def _jump_table(self, ins: Instruction, mode: int) -> list[int]:
        """Targets of `jmp *table(,%reg,scale)`: consecutive pointers into the function."""
        func, read = self.func, self.d.view.read
        scale = ins.memory_index_scale
        base = ins.memory_displacement & (MASK64 if mode == 64 else 0xFFFFFFFF)
        out = []
        for i in range(MAX_TABLE):
            data = read(base + i * scale, scale)
            if data is None or len(data) != scale:
                break
            target = int.from_bytes(data, "little", signed=scale == 4 and mode == 64) & MASK64
            if not func.start <= target < func.end:
                break
            out.append(target)
        return out

    def _refer(self, ins: Instruction, mode: int, regs: dict) -> int | None:
        """Record the data a memory operand names (a slot, or an array's object); the
        slot, if any."""
        slot, array = self._memory(ins, mode, regs)
        if slot is not None:
            self.facts.data_refs.append(slot)
        elif array is not None:
            self.facts.data_refs.append(array)
            self.facts.data_addrs.append(array)
        return slot

    def _memory(self, ins: Instruction, mode: int,
                regs: dict) -> tuple[int | None, int | None]:
        """(slot, array) a memory operand names: the slot is an exact address (rip-relative,
        absolute, a per-cpu offset, a field off a register holding a data object's
        address); the array is a data object addressed with a register index
        (`hypervisors(,%rax,8)`, `-0x7cde16c0(%rbp)`)."""
        base = ins.memory_base
        if base in (_RIP, _EIP):
            return ins.ip_rel_memory_address & MASK64, None
        wide = ins.memory_displ_size > 1
        if base == _NONE:
            if ins.memory_index == _NONE:
                disp = ins.memory_displacement & (MASK64 if mode == 64 else 0xFFFFFFFF)
                if disp > 0xFFFF or ins.memory_segment == _GS:
                    return disp, None  # absolute, or %gs:offset of a per-cpu variable
                return None, None
        elif regs and ins.memory_index == _NONE:
            held = regs.get(self.d._full[base])
            if held is not None and held[0] is not None and self.d.view.is_data(held[0]):
                return (held[0] + ins.memory_displacement) & MASK64, None
        if wide and base != _RSP:
            array = ins.memory_displacement & MASK64
            if array > 0xFFFFFFFF and self.d.view.is_data(array):
                return None, array
        return None, None

    def _far(self, ins: Instruction, mode: int, stack: list, work: list) -> None:
        """A far jump or far return: where it lands, in long mode once the code switched to
        it (wrmsr EFER and a write to cr0 seen before, on a 64-bit kernel)."""
        facts, view = self.facts, self.d.view
        armed = {p.split(",")[0] for p in facts.privileged}
        long_mode = 64 if self.d.bits == 64 and {"wrmsr", "mov cr0"} <= armed else mode
        slot = None
        if ins.op0_kind in (OpKind.FAR_BRANCH16, OpKind.FAR_BRANCH32):
            target = view.code_target(ins.far_branch32 if ins.op0_kind == OpKind.FAR_BRANCH32
                                      else ins.far_branch16)
        elif ins.flow_control == dec.RETURN:
            value, slot = stack[-1] if stack else (None, None)
            target = view.code_target(value)
        else:
            target = None
        if target is not None and self.func.start <= target < self.func.end:
            work.append((target, long_mode, None))
            facts.switches.append((ins.ip, target, long_mode))
            return
        facts.sites.append(Site(ins.ip, False, How.STACK, target, long_mode, slot))

    def _effects(self, ins: Instruction, bits: int, mode: int, regs: dict,
                 stack: list) -> None:
        """Data references, privileged instructions, constants and stores."""
        d, facts = self.d, self.facts
        full = d._full
        if bits & dec.PRIVILEGED:
            facts.privileged.append(dec.text(ins))
        slot = self._refer(ins, mode, regs) if bits & dec.MEMORY else None
        if bits & dec.FLAGS_ONLY:
            return  # test/cmp/bt: registers keep their values
        if bits & dec.COPY:
            self._copy(ins, regs)
            return
        if not bits & dec.TRACKED:
            if regs and ins.op_count and ins.op0_kind == OpKind.REGISTER and not (
                    ins.mnemonic in _SELF_TESTS and ins.op_count == 2
                    and ins.op1_kind == OpKind.REGISTER and ins.op1_register == ins.op0_register):
                regs.pop(full[ins.op0_register], None)  # (`and %eax,%eax` only sets flags)
            return
        mnemonic = ins.mnemonic
        if mnemonic == _PUSH:
            pushed = self._operand_value(ins, 0, slot, regs)
            stack.append(pushed)
            if pushed[1] is None and (target := d.view.code_target(pushed[0])) is not None:
                facts.code_refs.append(target)  # an argument on the stack, or a return address
            return
        if mnemonic == _POP:
            popped = stack.pop() if stack else None
            if ins.op0_kind == OpKind.REGISTER:
                reg = full[ins.op0_register]
                regs.pop(reg, None)
                if popped is not None and popped[0] is not None:
                    regs[reg] = popped
            return
        if ins.op_count < 2:
            return
        if ins.op0_kind != OpKind.REGISTER:
            if mnemonic == _MOV and ins.op0_kind == OpKind.MEMORY:
                value, source = self._operand_value(ins, 1, None, regs)
                target = d.view.code_target(value)
                if value is not None and source is None and d.view.is_data(value):
                    facts.data_addrs.append(value)  # `conswitchp = &vga_con`
                if target is not None and _memory_sizes()[ins.memory_size] >= 4:
                    if slot is not None:  # the ops resolver follows calls through the slot
                        facts.stores.append(Store(ins.ip, slot, target))
                    elif source is None:  # into a struct off a register: the address escapes
                        facts.code_refs.append(target)
            return
        reg = full[ins.op0_register]
        if mnemonic in (_ADD, _SUB) and reg in regs:
            delta = ins.immediate(1) if ins.op1_kind in _IMMEDIATES else None
            self._adjust(reg, mnemonic, delta, regs)
            return
        regs.pop(reg, None)
        if mnemonic == _LEA:
            held = self._lea(ins, slot, regs)
        elif mnemonic == _MOV:
            held = self._operand_value(ins, 1, slot, regs)
            if held[0] is None:
                # a slot whose contents are not known here (NULL until code stores into
                # it, such as late_time_init): the register remembers the slot
                held = (None, slot) if slot is not None and ins.op1_kind == OpKind.MEMORY \
                    else None
            elif d._size[ins.op0_register] == 4:
                held = (held[0] & 0xFFFFFFFF, held[1])
        else:  # xor and the like
            held = None
            if mnemonic == _ADD and ins.op1_kind in _IMMEDIATES:
                self._indexed(ins.immediate(1) & MASK64)
        if held is not None:
            regs[reg] = held
            if held[1] is None and ins.op1_kind != OpKind.REGISTER and held[0] is not None \
                    and (target := d.view.code_target(held[0])) is not None:
                # `mov $fn, %reg` / `lea fn(%rip), %reg`: the address is taken (handed on
                # as a tail call's argument, stored after a join: it escapes)
                facts.code_refs.append(target)
            if held[0] is not None and reg != _RSP and d.view.is_data(held[0]):  # not a stack
                facts.data_addrs.append(held[0])
                if ins.op1_kind in _IMMEDIATES and held[0] > 0xFFFFFFFF:
                    facts.data_refs.append(held[0])

    def _indexed(self, base: int) -> None:
        """`add $base, %reg` to an index: where `base` is a kernel address (not a size or
        a per-CPU offset), an array whose address is taken, of code stubs starting a
        function (`irq_entries_start`) or of data (`supported_fields[]`, the ima template
        fields and their callbacks)."""
        if base <= 0xFFFFFFFF:
            return
        view, facts = self.d.view, self.facts
        if view.function_starting_at(base) is not None:
            facts.code_refs.append(base)
        elif view.is_data(base):
            facts.data_addrs.append(base)

    def _copy(self, ins: Instruction, regs: dict) -> None:
        """`rep movs` from a known object into a known one stores each code address the
        source holds (xen_init_irq_ops: `pv_ops.irq = xen_irq_ops`), upwards (the kernel
        keeps the direction flag clear); rdi, rsi and rcx are not known after any movs."""
        dst, src, count = (regs.pop(r, None) for r in _COPY_REGISTERS)
        if not ins.has_rep_prefix or dst is None or src is None or count is None \
                or None in (dst[0], src[0], count[0]) or dst[1] is not None \
                or src[1] is not None or count[1] is not None:
            return
        view, width = self.d.view, self.d.bits // 8
        size = min(count[0] * _MOVS_WIDTH[ins.code], MAX_COPY)
        if not (view.is_data(dst[0]) and view.is_data(src[0])):
            return
        for offset in range(0, size - width + 1, width):
            value = view.slot_value(src[0] + offset)
            if value is not None:
                self.facts.stores.append(Store(ins.ip, dst[0] + offset, value, True))

    def _operand_value(self, ins: Instruction, i: int, slot: int | None,
                       regs: dict) -> tuple[int | None, int | None]:
        """(value, slot it was read from) of operand i, when it is a known constant."""
        kind = ins.op_kind(i)
        if kind == OpKind.REGISTER:
            held = regs.get(self.d._full[ins.op_register(i)])
            return held if held else (None, None)
        if kind == OpKind.MEMORY:
            if slot is None:
                return None, None
            value = self.d.view.pointer_value(slot)
            return (value, slot) if value is not None else (None, None)
        if kind in _IMMEDIATES:
            return ins.immediate(i) & MASK64, None
        return None, None

    def _lea(self, ins: Instruction, slot: int | None, regs: dict) -> tuple[int, None] | None:
        if slot is not None:
            return slot, None
        base, index = ins.memory_base, ins.memory_index
        if base == Register.NONE or index != Register.NONE:
            return None
        base = self.d._full[base]
        disp = ins.memory_displacement
        if ins.memory_displ_size and disp & (1 << 63):
            disp -= 1 << 64
        if base in regs and regs[base][0] is not None:  # kept whole: high-linked .code32
            return (regs[base][0] + disp) & MASK64, None
        if base in self.d.base_registers:
            return disp & MASK64, None
        return None

    def _adjust(self, reg: int, mnemonic: int, delta: int | None, regs: dict) -> None:
        """`lea sym(%rip),%rax; sub phys_base(%rip),%rax; add $map,%rax` moves a symbol's
        address between the kernel's mappings: keep the symbol unless the value adjusted by
        a known constant is itself a code address. An added kernel address is an array's
        (`mov idx(%rip),%eax; add $array,%rax`: see `_indexed`)."""
        value, slot = regs[reg]
        if mnemonic == _ADD and delta is not None:
            self._indexed(delta & MASK64)
        if value is None:
            del regs[reg]
            return
        if delta is not None:
            moved = (value + delta if mnemonic == _ADD else value - delta) & MASK64
            if self.d.view.code_target(moved) is not None:
                regs[reg] = (moved, slot)
                return
        if self.d.view.code_target(value) is None:
            del regs[reg]


def _mnemonic(name: str) -> int:
    from iced_x86 import Mnemonic

    return getattr(Mnemonic, name)


_RSP, _RIP, _EIP, _NONE, _GS = Register.RSP, Register.RIP, Register.EIP, Register.NONE, \
    Register.GS
_REGISTER = OpKind.REGISTER
_LOUD = dec.IMMEDIATE | dec.PRIVILEGED | dec.FAR  # worth a look even with nothing known
_MOVES = dec.TRACKED | dec.PRIVILEGED  # may load a register or must be recorded
_MEMORY, _STACK, _FAR = dec.MEMORY, dec.STACK, dec.FAR
_COPY_REGISTERS = (Register.RDI, Register.RSI, Register.RCX)
_MOVS_WIDTH = {Code.MOVSB_M8_M8: 1, Code.MOVSW_M16_M16: 2, Code.MOVSD_M32_M32: 4,
               Code.MOVSQ_M64_M64: 8}
MAX_COPY = 4096  # bytes of one struct copy read for code addresses
_FLOW = 1 << 8  # kinds at or above this are not flow NEXT (`FunctionDecoder.kind_of`)
_CALL, _CONDITIONAL, _UNCONDITIONAL = dec.CALL, dec.CONDITIONAL_BRANCH, \
    dec.UNCONDITIONAL_BRANCH
_UNKNOWN = (None, None)  # a stack slot or register of unknown value
_SELF_TESTS = frozenset({_mnemonic("AND"), _mnemonic("OR")})
_DIRECT_FLOWS = frozenset({dec.CALL, dec.UNCONDITIONAL_BRANCH, dec.CONDITIONAL_BRANCH})
_PUSH, _POP, _MOV, _LEA, _ADD, _SUB = (_mnemonic(n) for n in
                                       ("PUSH", "POP", "MOV", "LEA", "ADD", "SUB"))
_IMMEDIATES = {OpKind.IMMEDIATE8, OpKind.IMMEDIATE16, OpKind.IMMEDIATE32, OpKind.IMMEDIATE64,
               OpKind.IMMEDIATE8TO16, OpKind.IMMEDIATE8TO32, OpKind.IMMEDIATE8TO64,
               OpKind.IMMEDIATE32TO64}


def _int3_codes() -> frozenset[int]:
    from iced_x86 import Code

    return frozenset({Code.INT3})


def _ud1_codes() -> frozenset[int]:
    from iced_x86 import Code

    return frozenset({Code.UD1_R16_RM16, Code.UD1_R32_RM32, Code.UD1_R64_RM64})


_INT3_CODES = _int3_codes()
# ud1 is what 7.x's WARN() (`__WARN_trap`) and clang's UBSAN checks trap with: the handler
# reports and execution goes on (arch/x86/kernel/traps.c handle_bug()).
_UD1_CODES = _ud1_codes()


@cache
def _memory_sizes() -> list[int]:
    """Bytes per iced MemorySize value."""
    from iced_x86 import MemorySize, MemorySizeInfo

    count = 1 + max(getattr(MemorySize, n) for n in dir(MemorySize) if n.isupper())
    return [MemorySizeInfo(m).size for m in range(count)]
