"""Decode one function with capstone: its control transfers, stores and data references.

Recursive descent from the function's start, in the CPU mode the caller gives; a far jump
from 32-bit code into long mode switches the decoder to 64-bit. A few register and stack
values are tracked within a straight run of code, so that `mov $sym,%rax; jmp *%rax`,
`movq slot(%rip),%rax; push %rax; lretq` and retpoline thunk calls resolve.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import capstone

from entrycheck.binary.functions import Function, FunctionTable
from entrycheck.binary.image import Image
from entrycheck.model import EdgeKind, FunctionFacts, Transfer
from entrycheck.special.tables import SpecialSections

MASK64 = (1 << 64) - 1
AFTER_CALL = "after call "  # text of a fall-through that holds only if the callee returns
_MEM = re.compile(r"(?:(\w+):)?\[([^\]]*)\]")
_TABLE = re.compile(r"^(\w+)\*(\d) ([+-]) (0x[0-9a-f]+|\d+)$")
_GPR = ["ax", "bx", "cx", "dx", "si", "di", "bp", "sp"]
_REG_FAMILY: dict[str, str] = {}
for _r in _GPR:
    for _alias in (f"r{_r}", f"e{_r}", _r, _r.replace("x", "l") if _r.endswith("x") else _r + "l"):
        _REG_FAMILY[_alias] = f"r{_r}"
for _n in range(8, 16):
    for _suffix in ("", "d", "w", "b"):
        _REG_FAMILY[f"r{_n}{_suffix}"] = f"r{_n}"

_TERMINATORS = frozenset({"ret", "retq", "ud2", "int3", "sysret", "sysretq", "iretq", "iret",
                          "iretd", "retf", "retfq", "lret", "ljmp"})
_PRIVILEGED = frozenset({"wrmsr", "lidt", "lgdt", "ltr", "lldt", "invlpg", "wbinvd", "swapgs",
                         "hlt", "cli", "sti", "clts", "invpcid", "wrfsbase", "wrgsbase"})
# Mnemonics the decoder looks at even without a memory operand (jcc: all start with "j").
_TRACKED = frozenset({"call", "jmp", "mov", "movabs", "lea", "push", "pop", "add",
                      "sub"}) | _TERMINATORS | _PRIVILEGED
_RETURN_THUNKS = frozenset({"__x86_return_thunk", "zen_untrain_ret", "srso_return_thunk",
                            "srso_untrain_ret", "retbleed_return_thunk", "srso_alias_return_thunk"})
_BASE_REL = re.compile(r"^(\w+) ([+-]) (0x[0-9a-f]+|\d+)$")
_CONTROL_REG = re.compile(r"\b[cd]r\d\b")
_INDIRECT_THUNK = re.compile(r"^__x86_indirect_(?:call_|jump_)?thunk_(\w+)$")


def _branch_target(ops: str, addr: int, mode: int) -> int | None:
    """A direct branch's target. Capstone wraps 32-bit code's targets to 32 bits; relative
    branches keep the upper bits of where the code is linked (a 64-bit kernel's .code32)."""
    target = _int(ops)
    if target is None or mode == 64:
        return target
    return (addr & ~0xFFFFFFFF) | (target & 0xFFFFFFFF)


def _flags_only(mnem: str, ops: str) -> bool:
    """`test`, `cmp`, `bt`, `and %eax,%eax`: only flags change, registers keep their values."""
    if mnem in ("test", "cmp", "bt"):
        return True
    dest, _, src = ops.partition(", ")
    return mnem in ("and", "or") and dest == src


def _int(text: str) -> int | None:
    try:
        return int(text, 0) & MASK64
    except ValueError:
        return None


class Decoder:
    """Decodes functions of one image; stateless between calls apart from its tables."""

    def __init__(self, image: Image, functions: FunctionTable, noreturn: Iterable[str],
                 special: SpecialSections | None = None,
                 base_registers: frozenset[str] = frozenset(),
                 static_call_updates: dict[str, tuple[str, str]] | None = None):
        self.image = image
        self.functions = functions
        self.special = special
        self.base_registers = base_registers  # hold the load base: `lea d(%reg)` is d
        self._cs = {
            32: capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_32),
            64: capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64),
        }
        self.noreturn = {f.start for n in noreturn if (f := functions.named(n)) is not None}
        self._updaters = {f.start: regs for n, regs in (static_call_updates or {}).items()
                          if (f := functions.named(n)) is not None}
        self.thunks: dict[int, str] = {}
        self.return_thunks: set[int] = set()
        for func in functions:
            for name in (func.name, *func.aliases):
                if m := _INDIRECT_THUNK.match(name):
                    self.thunks[func.start] = _REG_FAMILY.get(m.group(1), m.group(1))
                if name in _RETURN_THUNKS:
                    self.return_thunks.add(func.start)

    def code_target(self, value: int | None) -> int | None:
        """A code address from a value that may be virtual or physical (`_pa(sym)`)."""
        if value is None:
            return None
        if self.image.is_code(value):
            return value
        virt = self.image.phys_to_virt(value)
        return virt if virt is not None and self.image.is_code(virt) else None

    def slot_value(self, slot: int) -> int | None:
        """The code address a data slot holds: by relocation where the image keeps them,
        else by its contents."""
        reloc = self.image.relocation_at(slot)
        if reloc is not None:
            return self.code_target(reloc.target)
        return self.code_target(self.image.read_pointer(slot))

    def decode(self, func: Function, mode: int, starts: Iterable[int] = ()) -> FunctionFacts:
        """Facts of `func` decoded from its start (and from `starts`, for code entered
        mid-function) in `mode`."""
        facts = FunctionFacts(func.start, mode)
        seen: set[int] = set()
        work = [(s, mode) for s in (starts or (func.start,))]
        if self.special is not None:
            work += [(t, mode) for t in self.special.jump_label_targets_in(func.start, func.end)]
            # code after a patched site runs when the replacement does not branch away
            work += [(a.site + a.original_length, mode)
                     for a in self.special.alternatives_in(func.start, func.end)]
        while work:
            start, run_mode = work.pop()
            if start not in seen and func.start <= start < func.end:
                self._run(func, start, run_mode, facts, seen, work)
        if self.special is not None:
            for alt in self.special.alternatives_in(func.start, func.end):
                if alt.length:
                    self._replacement(func, alt.replacement, alt.length, mode, facts)
        return facts

    def _replacement(self, func: Function, start: int, length: int, mode: int,
                     facts: FunctionFacts) -> None:
        """Direct calls and jumps out of the function in alternative replacement code."""
        code = self.image.read(start, length)
        for addr, _, mnem, ops in self._cs[mode].disasm_lite(code or b"", start):
            if mnem != "call" and mnem[0] != "j":
                continue
            target = self.code_target(_int(ops))
            inside = target is None or func.start <= target < func.end
            if inside or start <= target < start + length or target in self.return_thunks \
                    or target in self.thunks:
                continue
            facts.transfers.append(Transfer(addr, EdgeKind.ALTERNATIVE, target, mode,
                                            text=f"{mnem} {ops}"))

    def _run(self, func: Function, start: int, mode: int, facts: FunctionFacts,
             seen: set[int], work: list[tuple[int, int]]) -> None:
        """Decode straight-line code from `start` until a terminator or decoded code."""
        code = self.image.read(start, func.end - start)
        if code is None:
            return
        regs: dict[str, tuple[int, int | None]] = {}
        stack: list[tuple[int | None, int | None]] = []  # pushed (value, slot it came from)
        nxt = start
        mnem = ""
        for addr, size, mnem, ops in self._cs[mode].disasm_lite(code, start):
            if addr in seen:
                return
            seen.add(addr)
            nxt = addr + size
            if mnem not in _TRACKED and mnem[0] != "j" and "[" not in ops:
                # arithmetic and moves between registers: only the destination's value dies
                if regs and not _flags_only(mnem, ops):
                    regs.pop(_REG_FAMILY.get(ops.partition(", ")[0]), None)
                continue
            text = f"{mnem} {ops}".strip()
            if mnem == "call" and _branch_target(ops, addr, mode) == nxt:
                stack.append((nxt, None))  # `call 1f; 1: pop %reg`: the code's own address
                continue
            if mnem in ("call", "jmp") or (mnem[0] == "j" and mnem != "jmp"):
                if self._branch(func, addr, nxt, mnem, ops, mode, text, regs, facts, work):
                    return
                if mnem == "call":
                    regs.clear()
                continue
            if mnem in _TERMINATORS:
                self._terminator(func, addr, mnem, ops, mode, text, stack, facts, work)
                return
            self._effects(addr, nxt, mnem, ops, text, regs, stack, facts)
        if not func.end <= nxt < func.end + 16:
            return
        after = self.functions.starting_at(func.end)
        if after is None:
            return
        if mnem != "call":
            facts.transfers.append(Transfer(nxt, EdgeKind.FALLTHROUGH, after.start, mode))
            return
        # Code that ends in a call falls through only if the callee returns (asm such as
        # secondary_startup_64's `call verify_cpu`): the graph keeps this edge only then.
        callee = _branch_target(ops, addr, mode)
        if callee is not None and callee not in self.noreturn:
            facts.transfers.append(Transfer(nxt, EdgeKind.FALLTHROUGH, after.start, mode,
                                            text=f"{AFTER_CALL}{callee:#x}"))

    def _branch(self, func: Function, addr: int, nxt: int, mnem: str, ops: str, mode: int,
                text: str, regs: dict, facts: FunctionFacts, work: list) -> bool:
        """Handle call/jmp/jcc; return True when the run ends here."""
        is_call = mnem == "call"
        ends_run = mnem == "jmp"
        target = _branch_target(ops, addr, mode)
        if target is not None:
            if func.start <= target < func.end and not is_call:
                work.append((target, mode))
                return ends_run
            if target in self.return_thunks or target in self.thunks:
                # the thunk runs (a node of its own); what it stands for is a ret or an
                # indirect call/jmp through a register
                kind = EdgeKind.CALL if is_call else EdgeKind.JUMP
                facts.transfers.append(Transfer(addr, kind, target, mode, text=text))
            if target in self.return_thunks:
                facts.returns = True
                return ends_run
            if target in self.thunks:
                reg = regs.get(self.thunks[target])
                self._indirect(addr, is_call, reg, mode, text, facts)
            else:
                if target in self._updaters:
                    self._static_call_store(addr, regs, self._updaters[target], facts)
                kind = EdgeKind.CALL if is_call else EdgeKind.JUMP
                resolved = self.code_target(target) or target
                facts.transfers.append(Transfer(addr, kind, resolved, mode, text=text))
                if not is_call and self.functions.at(resolved) is None:
                    facts.returns = True  # leaves for code we cannot see: assume it returns
            return ends_run or (is_call and target in self.noreturn)
        mem = _MEM.search(ops)
        if mem is None:
            held = regs.get(_REG_FAMILY.get(ops, ops))
            local = self.code_target(held[0]) if held else None
            if local is not None and func.start <= local < func.end and not is_call:
                work.append((local, mode))
                return True
            self._indirect(addr, is_call, held, mode, text, facts)
            return ends_run
        slot = self._address(mem.group(2), nxt)
        if slot is not None:
            facts.data_refs.append((addr, slot))
            transfer = Transfer(addr, EdgeKind.SLOT, self.slot_value(slot), mode, slot, text)
            (facts.transfers if transfer.target is not None else facts.unresolved).append(transfer)
            facts.returns |= transfer.target is None and not is_call
            return ends_run
        table = _TABLE.match(mem.group(2))
        if table and not is_call:
            base = _int(table.group(4)) or 0
            base = (-base & MASK64) if table.group(3) == "-" else base
            if mode == 32:
                base &= 0xFFFFFFFF
            targets = self._jump_table(func, base, int(table.group(2)), mode)
            work.extend((t, mode) for t in targets)
            if targets:
                return True
        facts.unresolved.append(Transfer(addr, EdgeKind.SLOT, None, mode, None, text))
        facts.returns |= not is_call
        return ends_run

    def _static_call_store(self, addr: int, regs: dict, arg_regs: tuple[str, str],
                           facts: FunctionFacts) -> None:
        """`static_call_update(name, func)` with constants: the trampoline now jumps to func."""
        tramp, func = (regs.get(r) for r in arg_regs)
        tramp_at = self.code_target(tramp[0]) if tramp else None
        func_at = self.code_target(func[0]) if func else None
        if tramp_at is not None and func_at is not None:
            facts.stores.append((addr, tramp_at, func_at))

    def _indirect(self, addr: int, is_call: bool, reg: tuple[int, int | None] | None, mode: int,
                  text: str, facts: FunctionFacts) -> None:
        target = self.code_target(reg[0]) if reg else None
        if target is None:
            facts.unresolved.append(Transfer(addr, EdgeKind.REGISTER, None, mode, text=text))
            facts.returns |= not is_call  # an unknown tail call may return
            return
        kind = EdgeKind.SLOT if reg[1] is not None else EdgeKind.REGISTER
        facts.transfers.append(Transfer(addr, kind, target, mode, reg[1], text))

    def _terminator(self, func: Function, addr: int, mnem: str, ops: str, mode: int, text: str,
                    stack: list, facts: FunctionFacts, work: list) -> None:
        if mnem in ("ret", "retq"):
            facts.returns = True
            return
        armed = {text.split(",")[0] for _, text in facts.privileged}
        long_mode = 64 if self.image.bits == 64 and {"wrmsr", "mov cr0"} <= armed else mode
        if mnem == "ljmp" and ":" in ops:
            raw = _int(ops.split(":", 1)[1])
            target = self.code_target(raw)
            slot = None
        elif mnem in ("retf", "retfq", "lret"):
            value, slot = stack[-1] if stack else (None, None)
            target = self.code_target(value)
        else:
            return
        if target is None:
            facts.unresolved.append(Transfer(addr, EdgeKind.FAR, None, long_mode, slot, text))
        elif func.start <= target < func.end:
            work.append((target, long_mode))
        else:
            facts.transfers.append(Transfer(addr, EdgeKind.FAR, target, long_mode, slot, text))

    def _effects(self, addr: int, nxt: int, mnem: str, ops: str, text: str, regs: dict,
                 stack: list, facts: FunctionFacts) -> None:
        """Track constants, stores, data references and privileged instructions."""
        if mnem in _PRIVILEGED or (mnem == "mov" and _CONTROL_REG.search(ops)):
            facts.privileged.append((addr, text))
        if mnem == "push":
            held = regs.get(_REG_FAMILY.get(ops, ""))
            stack.append(held if held else (_int(ops), None))
            return
        if mnem == "pop":
            popped = stack.pop() if stack else None
            reg = _REG_FAMILY.get(ops, ops)
            regs.pop(reg, None)
            if popped is not None and popped[0] is not None:
                regs[reg] = popped
            return
        dest, _, src = ops.partition(", ")
        mem = _MEM.search(ops)
        slot = None
        if mem is not None:
            slot = self._address(mem.group(2), nxt)
            if mem.group(1) == "gs" and slot is None:
                slot = _int(mem.group(2))
            if slot is not None:
                facts.data_refs.append((addr, slot))
        reg = _REG_FAMILY.get(dest)
        if _flags_only(mnem, ops):
            return
        if mnem in ("add", "sub") and reg in regs:
            self._adjust(reg, mnem, src, regs)
            return
        if reg is not None:
            regs.pop(reg, None)
            if mnem in ("mov", "movabs", "lea") and src:
                held = self._load(mnem, dest, src, mem, slot, regs)
                if held is not None:
                    regs[reg] = held
                    self._note_immediate(addr, src, facts)
        elif mnem == "mov" and slot is not None and dest.startswith(("qword", "dword")):
            target = self.code_target(self._value(src, regs))
            if target is not None:
                facts.stores.append((addr, slot, target))

    def _adjust(self, reg: str, mnem: str, src: str, regs: dict) -> None:
        """`lea sym(%rip),%rax; sub phys_base(%rip),%rax; add $map,%rax` moves a symbol's
        address between the kernel's mappings: keep the symbol unless the adjusted value
        is itself a code address."""
        value, slot = regs[reg]
        delta = _int(src)
        if delta is not None:
            moved = (value + delta if mnem == "add" else value - delta) & MASK64
            if self.code_target(moved) is not None:
                regs[reg] = (moved, slot)
                return
        if self.code_target(value) is None:
            del regs[reg]

    def _load(self, mnem: str, dest: str, src: str, mem: re.Match | None, slot: int | None,
              regs: dict) -> tuple[int, int | None] | None:
        """The (value, slot) a mov/lea puts into a register, when it is a known constant."""
        if mnem == "lea":
            m = _BASE_REL.match(mem.group(2)) if slot is None and mem is not None else None
            if m:
                base = _REG_FAMILY.get(m.group(1))
                disp = _int(m.group(3)) or 0
                disp = -disp if m.group(2) == "-" else disp
                if base in regs:  # kept whole: 32-bit code of a 64-bit kernel is linked high
                    return (regs[base][0] + disp) & MASK64, None
                if base in self.base_registers:
                    return disp & MASK64, None
            return None if slot is None else (slot, None)
        if mem is not None:
            if slot is None:
                return None
            value = self.slot_value(slot)
            return None if value is None else (value, slot)
        value = self._value(src, regs)
        if value is None:
            return None
        return (value & 0xFFFFFFFF if dest.startswith("e") else value, None)

    def _value(self, operand: str, regs: dict) -> int | None:
        value = _int(operand)
        if value is not None:
            return value
        held = regs.get(_REG_FAMILY.get(operand, ""))
        return held[0] if held else None

    def _note_immediate(self, addr: int, src: str, facts: FunctionFacts) -> None:
        value = _int(src)
        if value is not None and value > 0xFFFFFFFF and self.image.section_at(value) is not None:
            facts.data_refs.append((addr, value))

    @staticmethod
    def _address(expr: str, nxt: int) -> int | None:
        """Absolute address of `rip + d` or a plain displacement; None for register bases."""
        if expr.startswith("rip"):
            disp = _int(expr[4:].replace(" ", "")) if len(expr) > 3 else 0
            return None if disp is None else (nxt + disp) & MASK64
        value = _int(expr)
        if value is not None and value > 0xFFFF:
            return value
        return None

    def _jump_table(self, func: Function, base: int, scale: int, mode: int = 64) -> list[int]:
        """Targets of a jump table: consecutive pointers into the function itself."""
        out = []
        for i in range(512):
            data = self.image.read(base + i * scale, scale)
            if data is None:
                break
            target = int.from_bytes(data, "little", signed=scale == 4 and mode == 64) & MASK64
            if not func.start <= target < func.end:
                break
            out.append(target)
        return out

