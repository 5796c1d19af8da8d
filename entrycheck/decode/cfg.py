"""Which instructions of a function run whenever the function runs to its end.

A small control-flow graph of basic blocks (split at local branch targets and after
conditional branches), then dominators of the exit: an instruction in a block that every
path from the entry to a normal exit (a return, a tail jump, a call that continues the
boot elsewhere such as x86_64_start_reservations) passes through is must-execute. Paths
into a dead end (BUG(), panic()) do not count: they are not the boot. The ops resolver
uses it to tell a store that always happens from one under a condition (sme_early_init
sets x86_init.resources.dmi_setup only on SEV-SNP guests).

Boot facts decide branches: what an entry's path has set before the function runs (Xen
PV's xen_start_kernel gets a non-NULL start_info in %rdi, so `if (!si) return;` is not
taken there). A conditional branch after `cmp`/`test` with an immediate, or `test
reg,reg`, of a known variable or of a register known at the start or loaded (or copied)
from a known variable follows only its live side when every value the fact allows takes
it the same way (`ja` after `cmp $2` of hardware_subarch 0). Known registers flow along
branches and, callee-saved, past calls; any write forgets one (cpuid's %ebx too); where
paths join only what all of them know holds. A variable is never read wider than it is,
and `not 0` is decided only on the whole value. `dead_code` gives, per entry, the
instructions that only the dead sides of decided branches reach (the walk drops the calls
there: native never runs the `if (xen_pv_domain())` arm).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from iced_x86 import (
    ConditionCode,
    InstructionInfoFactory,
    Mnemonic,
    OpAccess,
    OpKind,
    Register,
)

from entrycheck.decode import decoder as dec
from entrycheck.decode.dataflow import full_register, memory_size, register_size
from entrycheck.model import Function, Possible

MAX_BLOCKS = 4096
EXIT = -1


class Known(NamedTuple):
    """A register or variable a boot fact speaks of: what it may be, and the fact's name."""

    where: int         # a full iced register, or a variable's address
    value: Possible
    label: str         # `xen_domain_type is 0 or 2`
    size: int = 8      # bytes of the value (a variable's size, 0 where not known)


class Facts(NamedTuple):
    """What is known when a function starts: argument registers and variables."""

    registers: tuple[Known, ...] = ()
    variables: tuple[Known, ...] = ()
    preserving: frozenset[int] = frozenset()  # calls that keep the argument registers


class _Flag(NamedTuple):
    """The flags after `cmp $operand` (the fact's value minus it) or `test $operand` (the
    value and it) on `size` bytes of a value a fact speaks of."""

    value: Known
    operand: int
    test: bool
    size: int


class _Decision(NamedTuple):
    taken: bool
    label: str


def must_execute(read: Callable[[int, int], bytes | None], func: Function, mode: int,
                 start: int, noreturn: frozenset[int],
                 dead_ends: frozenset[int], facts: Facts | None = None) -> frozenset[int]:
    """Instruction addresses of `func` run on every path from `start` to a normal exit;
    calls to `noreturn` functions exit, calls to `dead_ends` (error exits) lead nowhere;
    branches the `facts` decide go one way."""
    data = read(func.start, func.end - func.start) or b""
    blocks, succ = _blocks(data, func, mode, start, noreturn, dead_ends, facts or Facts())
    if not blocks:
        return frozenset()
    doms = _dominators(start, succ)
    if EXIT not in doms:
        return frozenset()
    return frozenset(a for leader in doms[EXIT] if leader != EXIT for a in blocks[leader])


def always_through(read: Callable[[int, int], bytes | None], func: Function, mode: int,
                   start: int, sites: frozenset[int], noreturn: frozenset[int],
                   dead_ends: frozenset[int], facts: Facts | None = None) -> bool:
    """Does every path from `start` to a normal exit pass through one of `sites` (stores
    on both sides of `if (static_call_initialized)` together always run)?"""
    data = read(func.start, func.end - func.start) or b""
    blocks, succ = _blocks(data, func, mode, start, noreturn, dead_ends, facts or Facts())
    if start not in blocks:
        return False
    cut = {leader for leader, body in blocks.items() if any(a in sites for a in body)}

    def exits(avoid: set[int]) -> bool:
        seen, stack = {start}, [start]
        while stack:
            for nxt in succ.get(stack.pop(), ()):
                if nxt == EXIT:
                    return True
                if nxt not in seen and nxt not in avoid:
                    seen.add(nxt)
                    stack.append(nxt)
        return False

    return exits(set()) and (start in cut or not exits(cut))


_Instrs = dict[int, tuple[int, int, int | None]]  # addr -> (next, flow, target)


def runs_before(read: Callable[[int, int], bytes | None], func: Function, mode: int,
                start: int, stops: frozenset[int], noreturn: frozenset[int],
                facts: Facts | None = None) -> tuple[frozenset[int], frozenset[int]]:
    """The instructions of `func`, entered at `start`, that may run before the first of
    `stops` runs (the stops excluded), and all the instructions decoded from `start`;
    branches the `facts` decide go one way."""
    data = read(func.start, func.end - func.start) or b""
    instrs, decided, _ = _instructions(data, func, mode, (start,), noreturn,
                                       facts or Facts())
    before: set[int] = set()
    stack = [start]
    while stack:
        addr = stack.pop()
        if addr in before or addr in stops or addr not in instrs:
            continue
        before.add(addr)
        nxt, flow, target = instrs[addr]
        taken = decided[addr].taken if addr in decided else None
        if target is not None and func.start <= target < func.end and taken is not False \
                and flow in (dec.CONDITIONAL_BRANCH, dec.UNCONDITIONAL_BRANCH):
            stack.append(target)
        if flow not in (dec.UNCONDITIONAL_BRANCH, dec.RETURN, dec.INDIRECT_BRANCH,
                        dec.EXCEPTION) and not (flow == dec.CALL and target in noreturn) \
                and not taken:
            stack.append(nxt)
    return frozenset(before), frozenset(instrs)


def _instructions(data: bytes, func: Function, mode: int, starts: tuple[int, ...],
                  noreturn: frozenset[int], facts: Facts
                  ) -> tuple[_Instrs, dict[int, _Decision], set[int]]:
    """The instructions reached from `starts`, the conditional branches the facts decide
    (-> taken, and by which fact) and the block leaders; argument facts hold at the first
    start. Registers known (loaded from a fact's variable, argument registers) flow along
    branches, and past calls in callee-saved registers; a compare's flags only to the
    instructions after it. Where paths join only what all of them know holds, and code is
    decoded again when a join learns less than before; a decoding cut short (the caps)
    decides nothing."""
    instrs: _Instrs = {}
    decided: dict[int, _Decision] = {}
    before: dict[int, tuple[dict[int, Known], _Flag | None]] = {}  # what holds at an ip
    variables = {k.where: k for k in facts.variables}
    first = {k.where: k for k in facts.registers}
    work: list[tuple[int, dict[int, Known]]] = [(a, first if a == starts[0] else {})
                                                for a in reversed(starts)]
    leaders = set(starts)
    budget = MAX_BLOCKS * 64  # instructions decoded, counting decodes again after a join
    while work and len(instrs) < MAX_BLOCKS * 16 and budget > 0:
        addr, known = work.pop()
        if not func.start <= addr < func.end:
            continue
        decoder = dec.decoder(mode, data, func.start)
        decoder.position = addr - func.start
        decoder.ip = addr
        flag: _Flag | None = None
        fresh = False  # the previous instruction of this run was decoded for the first time
        for ins in decoder:
            budget -= 1
            ip = ins.ip
            held = before.get(ip)
            if held is not None:
                if fresh:
                    leaders.add(ip)  # new code falls into decoded code: a join
                kept = {r: k for r, k in held[0].items() if known.get(r) == k}
                kept_flag = flag if flag == held[1] else None
                if len(kept) == len(held[0]) and kept_flag == held[1]:
                    break  # decoded from here already with no more known
                known, flag = kept, kept_flag
            fresh = held is None
            before[ip] = (known, flag)
            flow = ins.flow_control
            target = ins.near_branch_target if flow in (
                dec.CALL, dec.UNCONDITIONAL_BRANCH, dec.CONDITIONAL_BRANCH) else None
            instrs[ip] = (ins.next_ip, flow, target)
            local = target is not None and func.start <= target < func.end
            if flow == dec.CONDITIONAL_BRANCH:
                taken = _taken(ins, flag)
                if taken is None:
                    decided.pop(ip, None)
                else:
                    decided[ip] = _Decision(taken, flag.value.label)
                leaders.add(ins.next_ip)
                if local and taken is not False:
                    leaders.add(target)
                    work.append((target, known))
                if taken:
                    break
                continue
            if flow == dec.CALL and target in facts.preserving:
                continue
            known, flag = _flags(ins, known, variables, flag)
            if flow == dec.UNCONDITIONAL_BRANCH:
                if local:
                    leaders.add(target)
                    work.append((target, known))
                break
            if flow == dec.CALL and target in noreturn:
                break
            if flow in (dec.RETURN, dec.INDIRECT_BRANCH, dec.EXCEPTION):
                break
    if work and (facts.registers or facts.variables):  # cut short: a join may be pending
        return _instructions(data, func, mode, starts, noreturn, Facts())  # decides nothing
    return instrs, decided, leaders


def dead_code(read: Callable[[int, int], bytes | None], func: Function, mode: int,
              starts: tuple[int, ...], noreturn: frozenset[int],
              facts: Facts) -> dict[int, tuple[int, str]]:
    """Instructions of `func` that only the dead sides of branches the `facts` decide
    reach: address -> (the decided branch, the fact)."""
    data = read(func.start, func.end - func.start) or b""
    live, decided, _ = _instructions(data, func, mode, starts, noreturn, facts)
    if not decided:
        return {}
    every, _, _ = _instructions(data, func, mode, starts, noreturn, Facts())
    dead = every.keys() - live.keys()
    out: dict[int, tuple[int, str]] = {}
    for branch, decision in sorted(decided.items()):
        if branch not in every:
            continue
        nxt, _flow, target = every[branch]
        stack = [nxt if decision.taken else target]
        while stack:
            addr = stack.pop()
            if addr not in dead or addr in out:
                continue
            out[addr] = (branch, decision.label)
            a_next, a_flow, a_target = every[addr]
            if a_target is not None and a_flow in (dec.UNCONDITIONAL_BRANCH,
                                                   dec.CONDITIONAL_BRANCH):
                stack.append(a_target)
            if a_flow not in (dec.UNCONDITIONAL_BRANCH, dec.RETURN, dec.INDIRECT_BRANCH,
                              dec.EXCEPTION) and not (a_flow == dec.CALL
                                                      and a_target in noreturn):
                stack.append(a_next)
    return out


def _blocks(data: bytes, func: Function, mode: int, start: int, noreturn: frozenset[int],
            dead_ends: frozenset[int], facts: Facts
            ) -> tuple[dict[int, list[int]], dict[int, list[int]]]:
    """Basic blocks (leader -> instruction addresses) and their successors."""
    instrs, decided, leaders = _instructions(data, func, mode, (start,), noreturn, facts)
    blocks: dict[int, list[int]] = {}
    succ: dict[int, list[int]] = {}
    for leader in sorted(leaders):
        if leader not in instrs or len(blocks) >= MAX_BLOCKS:
            continue
        body, addr = [], leader
        out: list[int] = []
        while addr in instrs:
            body.append(addr)
            nxt, flow, target = instrs[addr]
            local = target is not None and func.start <= target < func.end
            if flow == dec.CONDITIONAL_BRANCH:
                decision = decided.get(addr)
                taken = None if decision is None else decision.taken
                out = [] if taken else [nxt]
                if taken is not False:
                    out.append(target if local else EXIT)
                break
            if flow == dec.UNCONDITIONAL_BRANCH:
                out = [target] if local else [EXIT]
                break
            if flow in (dec.RETURN, dec.INDIRECT_BRANCH):
                out = [EXIT]
                break
            if flow == dec.EXCEPTION or (flow == dec.CALL and target in dead_ends):
                out = []  # a dead end: BUG(), panic()
                break
            if flow == dec.CALL and target in noreturn:
                out = [EXIT]  # the boot goes on elsewhere
                break
            if nxt in leaders:
                out = [nxt]
                break
            addr = nxt
        else:
            out = [EXIT]  # runs off the end of the function's bytes
        blocks[leader] = body
        succ[leader] = [s for s in out if s == EXIT or s in instrs]
    return blocks, succ


def _flags(ins, known: dict[int, Known], variables: dict[int, Known],
           flag: _Flag | None) -> tuple[dict[int, Known], _Flag | None]:
    """What is known after `ins`: the registers facts speak of (a new dict where `ins`
    changes them: a write, explicit or implied, forgets a register; a load of a whole
    register from a known variable, or a copy of a whole register, learns it; a call keeps
    only the callee-saved ones) and the flags where facts decide them."""
    mnemonic = ins.mnemonic
    if mnemonic in (Mnemonic.CMP, Mnemonic.TEST):
        return known, _compared(ins, known, variables)
    if ins.flow_control in (dec.CALL, dec.INDIRECT_CALL):
        return {r: k for r, k in known.items() if r in _CALLEE_SAVED}, None
    learned, reg = None, None
    if mnemonic in (Mnemonic.MOV, Mnemonic.MOVZX) and ins.op0_kind == OpKind.REGISTER \
            and ins.op0_register in _WHOLE:
        reg = full_register(ins.op0_register)
        if ins.op1_kind == OpKind.MEMORY and ins.memory_base == Register.RIP:
            fact = variables.get(ins.ip_rel_memory_address & dec.MASK64)
            if fact is not None and memory_size(ins.memory_size) == (fact.size or 8):
                learned = fact  # the whole value, zero-extended
        elif mnemonic == Mnemonic.MOV and ins.op1_kind == OpKind.REGISTER:
            learned = known.get(full_register(ins.op1_register))  # mov %ecx,%ebp
    if known:
        written = _written(ins)
        if written & known.keys():
            known = {r: k for r, k in known.items() if r not in written}
    if learned is not None:
        known = {**known, reg: learned}
    return known, flag if mnemonic in _KEEP_FLAGS else None


def _written(ins) -> set[int]:
    """The full registers an instruction may write, its implied operands included
    (cpuid's %ebx, xchg's second operand, rdmsr's %edx)."""
    return {full_register(u.register) for u in _INFO.info(ins).used_registers()
            if u.access not in _READ_ONLY}


def _compared(ins, known: dict[int, Known], variables: dict[int, Known]) -> _Flag | None:
    """The flags of `cmp`/`test` of a value a fact speaks of (a register, a variable) with
    an immediate, or of `test reg,reg` (the flags of `cmp $0`), else None. A narrower
    access sees the value's low bytes; a variable is not read wider than it is (the bytes
    after it are not the fact's), a register holds the value zero-extended, and a
    high-byte register (%ah) holds none of it."""
    if ins.op0_kind == OpKind.MEMORY:
        if ins.memory_base != Register.RIP:
            return None
        fact = variables.get(ins.ip_rel_memory_address & dec.MASK64)
        size = memory_size(ins.memory_size)
        if fact is not None and size > (fact.size or 8):
            return None
    elif ins.op0_kind == OpKind.REGISTER and ins.op0_register not in _HIGH_BYTES:
        fact = known.get(full_register(ins.op0_register))
        size = register_size(ins.op0_register)
    else:
        return None
    if fact is None:
        return None
    if ins.op1_kind in _IMMEDIATES:
        return _Flag(fact, ins.immediate(1), ins.mnemonic == Mnemonic.TEST, size)
    if ins.mnemonic == Mnemonic.TEST and ins.op1_kind == OpKind.REGISTER \
            and ins.op0_register == ins.op1_register:
        return _Flag(fact, 0, False, size)
    return None


def _taken(ins, flag: _Flag | None) -> bool | None:
    """Is a conditional branch taken after the flags of `flag` (None: not decided)? Each
    value the fact allows must give the same answer; a fact that only excludes values
    decides only `je`/`jne` after a `cmp` with an excluded value."""
    if flag is None:
        return None
    code = ins.condition_code
    values = flag.value.value.values
    if values is None:  # `not 0`: only a compare of the whole value says so
        if flag.test or code not in (ConditionCode.E, ConditionCode.NE) \
                or flag.size < (flag.value.size or 8):
            return None
        zero = flag.value.value.equals(flag.operand)
        return None if zero is None else zero == (code == ConditionCode.E)
    bits = 8 * flag.size
    answers = {_condition(code, v, flag.operand, flag.test, bits) for v in values}
    return answers.pop() if len(answers) == 1 else None


def _condition(code: int, value: int, operand: int, test: bool, bits: int) -> bool | None:
    """A condition code after `cmp`/`test` of `value` with `operand` on `bits` bits."""
    mask, sign = (1 << bits) - 1, 1 << (bits - 1)
    a, b = value & mask, operand & mask
    if test:
        result = a & b
        zero, carry, less = result == 0, False, bool(result & sign)  # CF = OF = 0
    else:
        result = (a - b) & mask
        zero, carry = a == b, a < b
        less = (a - (a & sign) * 2) < (b - (b & sign) * 2)  # signed: SF != OF
    return {ConditionCode.E: zero, ConditionCode.NE: not zero,
            ConditionCode.B: carry, ConditionCode.AE: not carry,
            ConditionCode.BE: carry or zero, ConditionCode.A: not (carry or zero),
            ConditionCode.L: less, ConditionCode.GE: not less,
            ConditionCode.LE: less or zero, ConditionCode.G: not (less or zero),
            ConditionCode.S: bool(result & sign),
            ConditionCode.NS: not (result & sign)}.get(code)


_WHOLE = frozenset(r for r in range(Register.EAX, Register.R15 + 1))  # 32/64-bit: the
# write sets the whole register
_HIGH_BYTES = frozenset({Register.AH, Register.BH, Register.CH, Register.DH})
_INFO = InstructionInfoFactory()
_READ_ONLY = frozenset({OpAccess.NONE, OpAccess.READ, OpAccess.COND_READ, OpAccess.NO_MEM_ACCESS})
_CALLEE_SAVED = frozenset({Register.RBX, Register.RBP, Register.R12, Register.R13,
                           Register.R14, Register.R15})  # kept across a call (the C ABI)
_KEEP_FLAGS = frozenset({Mnemonic.MOV, Mnemonic.LEA, Mnemonic.PUSH, Mnemonic.POP,
                         Mnemonic.MOVZX, Mnemonic.MOVSX, Mnemonic.MOVSXD, Mnemonic.NOP})
_IMMEDIATES = frozenset({OpKind.IMMEDIATE8, OpKind.IMMEDIATE16, OpKind.IMMEDIATE32,
                         OpKind.IMMEDIATE8TO16, OpKind.IMMEDIATE8TO32, OpKind.IMMEDIATE8TO64,
                         OpKind.IMMEDIATE32TO64})


def _dominators(start: int, succ: dict[int, list[int]]) -> dict[int, set[int]]:
    """Dominator sets over the blocks that can reach EXIT (iterative data flow)."""
    preds: dict[int, list[int]] = {}
    for a, outs in succ.items():
        for b in outs:
            preds.setdefault(b, []).append(a)
    live, work = {EXIT}, [EXIT]
    while work:
        node = work.pop()
        for p in preds.get(node, ()):
            if p not in live:
                live.add(p)
                work.append(p)
    if start not in live:
        return {}
    nodes = [n for n in succ if n in live] + [EXIT]
    doms = {n: set(nodes) for n in nodes}
    doms[start] = {start}
    changed = True
    while changed:
        changed = False
        for n in nodes:
            if n == start:
                continue
            ps = [doms[p] for p in preds.get(n, ()) if p in live]
            new = set.intersection(*ps) | {n} if ps else {n}
            if new != doms[n]:
                doms[n] = new
                changed = True
    return doms
