"""Cross-check the fast decoder's direct call/jump targets against angr's CFGFast.

angr is the reference engine, but loading a whole vmlinux through its ELF loader takes
minutes; instead the one executable section holding a function is loaded as a raw blob
(one `angr.Project` per section and mode, reused) and `CFGFast` is run over the function's
extent alone. What is compared is like-for-like with the decoder's CALL and JUMP transfers:

- every `call imm` found in code angr reaches from the function's start;
- every `jmp imm` / `jcc imm` whose target leaves [start, end);
- targets normalised the way the decoder does (`ImageContext.code_target`: `_pa(sym)` to
  virtual);
- retpoline thunks (`__x86_indirect_thunk_*`) and return thunks (`__x86_return_thunk`...)
  dropped from both sides: the decoder models them as indirect transfers / returns.

Only code reached from the function's start counts on angr's side: its gap scans (smart
scan, prologue search) are switched off and the CFG is walked from the start node without
following call edges. With smart scan on, angr also decodes blocks nothing reaches, such as
the out-of-line branch that a static-key `nop` (jump label) leads to only once patched at run
time (alarmtimer_do_nsleep: `freezing_slow_path`, `_raw_spin_lock_irqsave`...): a difference
of method, not a decoder bug.

Mismatch classes seen on Debian 6.1 (3,000 sampled functions), nothing to fix in the decoder:

- only_fast, instructions VEX cannot lift: angr ends the block at an instruction pyvex does
  not know (`encls`, SGX) and sees nothing after it, so the calls that follow are missing
  on angr's side: sgx_enclave_restrict_permissions (`sgx_enclave_etrack`, the jump to its
  `.cold` part), sgx_encl_ewb (`sgx_encl_cpumask`, `on_each_cpu_cond_mask`),
  sgx_reclaim_pages (`__warn_printk`). the decoder does: it is right.
- only_fast, recursive functions (fixed here, on angr's side): see `_reached_nodes`.
"""

from __future__ import annotations

import io
import logging
import random
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from entrycheck.binary.functions import FunctionTable
from entrycheck.binary.image import SHT_NOBITS, Image
from entrycheck.graph import GraphBuilder
from entrycheck.knowledge import x86
from entrycheck.model import Function, How

SAMPLE_SECTIONS = (".text", ".init.text")
MIN_SIZE, MAX_SIZE = 16, 4096
_ARCH = {64: "amd64", 32: "x86"}


@dataclass
class Mismatch:
    """One function on which the two engines disagree."""

    function: str
    only_fast: list[str] = field(default_factory=list)
    only_angr: list[str] = field(default_factory=list)


@dataclass
class CrossCheck:
    """The outcome of one cross-check run."""

    functions: int
    agreeing: int
    mismatches: list[Mismatch]
    seconds_angr: float
    seconds_fast: float

    @property
    def agreement(self) -> float:
        return self.agreeing / self.functions if self.functions else 1.0

    def as_json(self) -> dict:
        """A JSON-ready dict of the figures and every mismatch."""
        return {
            "functions": self.functions,
            "agreeing": self.agreeing,
            "agreement": round(self.agreement, 4),
            "seconds_angr": round(self.seconds_angr, 3),
            "seconds_fast": round(self.seconds_fast, 3),
            "mismatches": [asdict(m) for m in self.mismatches],
        }


def _import_angr() -> Any:
    """Import angr lazily (about 3 s) and silence its loggers."""
    for name in ("angr", "cle", "pyvex", "claripy", "archinfo"):
        logging.getLogger(name).setLevel(logging.ERROR)
    # angr logs a missing unicornlib.so at ERROR level on import; nothing here uses unicorn.
    logging.getLogger("angr.state_plugins.unicorn_engine").setLevel(logging.CRITICAL)
    import angr

    return angr


def _project(image: Image, func: Function, mode: int, cache: dict | None) -> Any:
    """An angr Project holding the kernel's allocated sections, from its first code section
    on, as one blob (so jump tables in .rodata are readable), cached per mode."""
    key = mode
    if cache is not None and key in cache:
        return cache[key]
    angr = _import_angr()
    start = min(s.addr for s in image.sections if s.executable)
    parts = [s for s in image.sections if s.alloc and s.size and s.addr >= start
             and s.type != SHT_NOBITS and s.addr - start < MAX_BLOB]
    base = min(s.addr for s in parts)
    blob = bytearray(max(s.addr + s.size for s in parts) - base)
    for s in parts:
        blob[s.addr - base : s.addr - base + s.size] = image.section_bytes(s)
    proj = angr.Project(io.BytesIO(bytes(blob)), auto_load_libs=False, main_opts={
        "backend": "blob", "arch": _ARCH[mode], "base_addr": base, "entry_point": base})
    if cache is not None:
        cache[key] = proj
    return proj


MAX_BLOB = 256 << 20  # the kernel image proper; per-cpu and other low sections are left out


def _branch_target(op_str: str) -> int | None:
    """The immediate target of a branch operand (`0xffffffff81000100`), else None."""
    try:
        return int(op_str.strip().lstrip("$"), 0)
    except ValueError:
        return None


def _angr_cfg(image: Image, func: Function, mode: int, project_cache: dict | None) -> Any:
    """angr's CFGFast over the function's extent alone, from its start, in a fresh KB.

    Gap scans (smart scan, prologue search) are off: they find code that is not reached
    from the start, such as the out-of-line branch a static-key `nop` leads to at run time,
    which the decoder rightly does not see either.
    """
    angr = _import_angr()
    proj = _project(image, func, mode, project_cache)
    return proj.analyses.CFGFast(
        kb=angr.KnowledgeBase(proj), regions=[(func.start, func.end)],
        function_starts=[func.start], normalize=True, force_complete_scan=False,
        force_smart_scan=False, function_prologues=False, resolve_indirect_jumps=True,
        data_references=False)


def _reached_nodes(cfg: Any, func: Function, noreturn: frozenset[int]) -> list[Any]:
    """CFG nodes inside the extent reached from the start by any edge but a call; a call
    returns to the next block unless its target is in `noreturn`, as in the decoder.

    angr drops the return edge of calls to functions it believes never return. A function
    whose only exit is `jmp __x86_return_thunk` (a tail jump out of the region, never
    analysed) looks like one to angr, so its recursive self-calls lost their return
    edges and the code after them (__fw_devlink_relax_cycles: `__fwnode_link_cycle`,
    `fw_devlink_relax_link`) went missing on angr's side: restore those edges here.
    """
    graph = cfg.model.graph
    start = cfg.model.get_any_node(func.start)
    if start is None:
        return []
    seen, work = {start}, [start]
    while work:
        node = work.pop()
        callees = {s.addr for s, d in graph[node].items() if d.get("jumpkind") == "Ijk_Call"}
        dead = bool(callees & noreturn)  # no fake return after a call to panic()
        succs = [s for s, d in graph[node].items() if d.get("jumpkind") != "Ijk_Call"
                 and not (dead and d.get("jumpkind") == "Ijk_FakeRet")]
        if callees and not succs and not callees & noreturn:
            after = cfg.model.get_any_node(node.addr + node.size)
            succs = [after] if after is not None else []
        for succ in succs:
            if succ not in seen and func.start <= succ.addr < func.end:
                seen.add(succ)
                work.append(succ)
    return sorted(seen, key=lambda n: n.addr)


def angr_direct_targets(image: Image, func: Function, mode: int = 64,
                        project_cache: dict | None = None,
                        noreturn: frozenset[int] = frozenset()) -> set[int]:
    """Direct call targets, and direct jmp/jcc targets leaving the function, in the code
    angr's CFGFast reaches from the function's start (calls to `noreturn` addresses do
    not return)."""
    cfg = _angr_cfg(image, func, mode, project_cache)
    proj = cfg.project
    mask = (1 << mode) - 1
    targets: set[int] = set()
    for node in _reached_nodes(cfg, func, noreturn):
        if not node.size:
            continue
        for insn in proj.factory.block(node.addr, size=node.size).capstone.insns:
            mnem = insn.mnemonic
            if not func.start <= insn.address < func.end or not mnem.startswith(("call", "j")):
                continue
            target = _branch_target(insn.op_str)
            if target is None:
                continue
            target &= mask
            if mnem == "call" or not func.start <= target < func.end:
                targets.add(target)
    return targets


def fast_direct_targets(builder: GraphBuilder, func: Function, mode: int = 64) -> set[int]:
    """The fast decoder's direct call and jump targets for one function."""
    facts = builder.decoder.decode(func, mode)
    return {s.target for s in facts.sites if s.how == How.DIRECT and s.target is not None}


def _thunks(builder: GraphBuilder) -> set[int]:
    """Retpoline and return thunk addresses: not direct edges in the decoder's model."""
    return set(builder.decoder.indirect_thunks) | set(builder.decoder.return_thunks)


def sized_functions(image: Image, functions: FunctionTable,
                    sections: tuple[str, ...] | None = None) -> list[Function]:
    """Functions named by a sized FUNC symbol, optionally only in `sections`."""
    sized = {s.name for s in image.symbols if s.type == "FUNC" and s.size > 0}
    return [f for f in functions
            if (sections is None or f.section in sections)
            and any(n in sized for n in (f.name, *f.aliases))]


def _pick(image: Image, functions: FunctionTable, names: list[str] | None, sample: int,
          seed: int) -> list[Function]:
    """The named functions, or a deterministic sample of mid-sized .text/.init.text FUNCs."""
    if names is not None:
        return [functions.find(n) for n in names]
    pool = [f for f in sized_functions(image, functions, SAMPLE_SECTIONS)
            if MIN_SIZE <= f.size <= MAX_SIZE]
    pool.sort(key=lambda f: f.start)
    return random.Random(seed).sample(pool, min(sample, len(pool)))


def _label(functions: FunctionTable, addr: int) -> str:
    """`name+0xoff (0xaddr)` for an address inside a known function, else its hex."""
    func = functions.at(addr)
    if func is None:
        return f"{addr:#x}"
    off = addr - func.start
    return f"{func.name}{f'+{off:#x}' if off else ''} ({addr:#x})"


def crosscheck(image: Image, functions: FunctionTable, names: list[str] | None = None,
               sample: int = 20, seed: int = 0, mode: int | None = None) -> CrossCheck:
    """Compare the fast decoder's CALL+JUMP targets with angr's, function by function."""
    mode = mode or image.bits
    picked = _pick(image, functions, names, sample, seed)
    builder = GraphBuilder(image, functions, x86())
    skip = _thunks(builder)
    noreturn = frozenset(builder.decoder.noreturn)
    _import_angr()
    cache: dict = {}
    mismatches: list[Mismatch] = []
    seconds_angr = seconds_fast = 0.0
    for func in picked:
        t0 = time.perf_counter()
        fast = fast_direct_targets(builder, func, mode) - skip
        t1 = time.perf_counter()
        ref = {builder.ctx.code_target(t) or t
               for t in angr_direct_targets(image, func, mode, cache, noreturn)} - skip
        t2 = time.perf_counter()
        seconds_fast += t1 - t0
        seconds_angr += t2 - t1
        if fast != ref:
            mismatches.append(Mismatch(
                func.name,
                [_label(functions, a) for a in sorted(fast - ref)],
                [_label(functions, a) for a in sorted(ref - fast)]))
    return CrossCheck(len(picked), len(picked) - len(mismatches), mismatches,
                      seconds_angr, seconds_fast)
