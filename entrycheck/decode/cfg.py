"""Which instructions of a function run whenever the function runs to its end.

A small control-flow graph of basic blocks (split at local branch targets and after
conditional branches), then dominators of the exit: an instruction in a block that every
path from the entry to a normal exit (a return, a tail jump, a call that continues the
boot elsewhere such as x86_64_start_reservations) passes through is must-execute. Paths
into a dead end (BUG(), panic()) do not count: they are not the boot. The ops resolver
uses it to tell a store that always happens from one under a condition (sme_early_init
sets x86_init.resources.dmi_setup only on SEV-SNP guests).
"""

from __future__ import annotations

from collections.abc import Callable

from entrycheck.decode import decoder as dec
from entrycheck.model import Function

MAX_BLOCKS = 4096
EXIT = -1


def must_execute(read: Callable[[int, int], bytes | None], func: Function, mode: int,
                 start: int, noreturn: frozenset[int],
                 dead_ends: frozenset[int]) -> frozenset[int]:
    """Instruction addresses of `func` run on every path from `start` to a normal exit;
    calls to `noreturn` functions exit, calls to `dead_ends` (error exits) lead nowhere."""
    data = read(func.start, func.end - func.start) or b""
    blocks, succ = _blocks(data, func, mode, start, noreturn, dead_ends)
    if not blocks:
        return frozenset()
    doms = _dominators(start, succ)
    if EXIT not in doms:
        return frozenset()
    return frozenset(a for leader in doms[EXIT] if leader != EXIT for a in blocks[leader])


def _blocks(data: bytes, func: Function, mode: int, start: int, noreturn: frozenset[int],
            dead_ends: frozenset[int]) -> tuple[dict[int, list[int]], dict[int, list[int]]]:
    """Basic blocks (leader -> instruction addresses) and their successors."""
    instrs: dict[int, tuple[int, int, int | None]] = {}  # addr -> (next, flow, target)
    work, leaders = [start], {start}
    while work and len(instrs) < MAX_BLOCKS * 16:
        addr = work.pop()
        if addr in instrs or not func.start <= addr < func.end:
            continue
        decoder = dec.decoder(mode, data, func.start)
        decoder.position = addr - func.start
        decoder.ip = addr
        for ins in decoder:
            if ins.ip in instrs:
                leaders.add(ins.ip)
                break
            flow = ins.flow_control
            target = ins.near_branch_target if flow in (
                dec.CALL, dec.UNCONDITIONAL_BRANCH, dec.CONDITIONAL_BRANCH) else None
            instrs[ins.ip] = (ins.next_ip, flow, target)
            local = target is not None and func.start <= target < func.end
            if flow == dec.CONDITIONAL_BRANCH:
                leaders.add(ins.next_ip)
                if local:
                    leaders.add(target)
                    work.append(target)
                continue
            if flow == dec.UNCONDITIONAL_BRANCH:
                if local:
                    leaders.add(target)
                    work.append(target)
                break
            if flow == dec.CALL and target in noreturn:
                break
            if flow in (dec.RETURN, dec.INDIRECT_BRANCH, dec.EXCEPTION):
                break
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
                out = [nxt] + ([target] if local else [EXIT])
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
