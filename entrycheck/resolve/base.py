"""What every resolver is and what it may use: the image's context and one entry's walk.

A resolver turns what decoding found into edges. It may
- configure the decoder (`decoder_options`: noreturn functions, thunks, traps that return),
- add decode starts inside a function (`starts`: code after an alternative site, exception
  fixups; `conditional_starts`: code that runs only once patched in, such as a static
  key's out-of-line branch),
- give the links a decoded function has whatever the entry (`links`: direct calls, slots,
  constants in registers, handlers installed, tables walked, callbacks passed, structs
  registered); they are computed once per decoded function and shared by all entries,
- act on one entry's walk (`walk`: stores into slots and static calls, which differ per
  entry), returning the sites it accounts for,
- adjust the finished graph (`finish`: stores that override a static target).
A site no resolver links or accounts for is listed as unresolved, with the reason.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable
from functools import wraps
from typing import TYPE_CHECKING, ClassVar, NamedTuple

from entrycheck.binary.btf import Btf
from entrycheck.binary.functions import FunctionTable
from entrycheck.binary.image import Image
from entrycheck.decode.cfg import Facts, Known
from entrycheck.decode.dataflow import register_named
from entrycheck.errors import EntrycheckError
from entrycheck.knowledge import Knowledge
from entrycheck.model import EdgeKind, Function, FunctionFacts, Site
from entrycheck.special.sections import SpecialSections

if TYPE_CHECKING:
    from entrycheck.graph import Walk


class Link(NamedTuple):
    """An edge a resolver found: to the function holding `target` (None: the site is
    accounted for without an edge, e.g. a jump table decoded in place)."""

    site: int
    target: int | None
    kind: EdgeKind
    mode: int
    text: str = ""
    via: str | None = None
    tail: bool = False  # control leaves the caller for good at this site
    resolves: bool = True  # the edge is where the site goes (not a thunk it passes)
    condition: str | None = None  # the site runs only once patched in
    slot: int | None = None  # the data slot the target was read from (stores may replace it)
    storer: int | None = None  # the function whose store gave the target (ops, static calls)

    @classmethod
    def of(cls, site: Site, kind: EdgeKind, target: int | None = None,
           via: str | None = None) -> Link:
        """The link of a decoded site (its target unless another is given); a site on the
        way to BUG() or panic() links on the fault layer."""
        if site.doomed:
            kind, via = EdgeKind.ERROR_PATH, via or "on the way to BUG() or panic()"
        return cls(site.address, site.target if target is None else target, kind, site.mode,
                   site.text, via, not site.call, condition=site.condition)


def per_image(func: Callable) -> Callable:
    """Remember `func(ctx, *args)` on the image context (kept as long as the image, not
    by a module-level cache that would keep every image alive)."""
    name = func.__qualname__

    @wraps(func)
    def remembered(ctx: ImageContext, *args):
        memo = ctx.memo(name)
        found = memo.get(args, memo)
        if found is memo:
            found = memo[args] = func(ctx, *args)
        return found
    return remembered


class ImageContext:
    """One image as the resolvers see it: bytes, symbols, special sections, knowledge."""

    def __init__(self, image: Image, functions: FunctionTable, knowledge: Knowledge,
                 kind: str):
        self.image = image
        self.functions = functions
        self.knowledge = knowledge
        self.kind = kind  # "vmlinux" or "compressed"
        self.special = SpecialSections(image, knowledge)
        ranges = sorted((s.addr, s.addr + s.size, s.executable)
                        for s in image.sections if s.alloc and s.size)
        self._starts = [r[0] for r in ranges]
        self._ranges = ranges
        # the lowest and highest+1 addresses of the allocated sections
        self.extent = (ranges[0][0], max(r[1] for r in ranges)) if ranges else (0, 0)
        self._slots: dict[int, int | None] = {}
        self._pointers: dict[int, int | None] = {}
        self._btf_read: tuple[Btf | None] | None = None
        self._slot_names: dict[int, str] = {}
        # entry -> (variables, argument registers by function, variables by function)
        self._facts: dict[str, tuple[tuple[Known, ...], dict[str, tuple[Known, ...]],
                                     dict[str, tuple[Known, ...]]]] = {}
        self.preserving = self.addresses("argument_preserving")
        self._memos: dict[str, dict] = {}
        self._targets: dict[int | None, int | None] = {}  # value -> code_target(value)

    def memo(self, name: str) -> dict:
        """A cache of this image's, for a helper's results (kept as long as the image)."""
        return self._memos.setdefault(name, {})

    def _section_kind(self, address: int) -> int:
        """1 for code, 2 for other allocated data, 0 outside the image (the hot lookups
        of the decoder, so a bisect over plain tuples)."""
        i = bisect.bisect_right(self._starts, address) - 1
        while i >= 0:
            lo, hi, code = self._ranges[i]
            if address < hi:
                return 1 if code else 2
            if i == 0 or self._ranges[i - 1][1] <= lo:
                return 0
            i -= 1
        return 0

    def addresses(self, which: str) -> frozenset[int]:
        """Start addresses of the functions a knowledge list names (compiler suffixes
        stripped), for this image."""
        return self.functions.index.matching(self.knowledge.names(which, self.kind))

    def functions_named(self, names: Iterable[str]) -> list[Function]:
        return [f for n in names for f in self.functions.all_named(n)]

    def code_target(self, value: int | None) -> int | None:
        """A code address from a value that may be virtual or physical (`_pa(sym)`)."""
        targets = self._targets
        if value in targets:
            return targets[value]
        found = targets[value] = self._code_target(value)
        return found

    def _code_target(self, value: int | None) -> int | None:
        if value is None:
            return None
        kind = self._section_kind(value)
        if kind == 1:
            return value
        if kind:
            return None
        virt = self.image.phys_to_virt(value)
        return virt if virt is not None and self._section_kind(virt) == 1 else None

    def slot_value(self, slot: int) -> int | None:
        """The code address a data slot holds: by relocation where the image keeps them,
        else by its contents."""
        if slot in self._slots:
            return self._slots[slot]
        kind = self._section_kind(slot)
        # a slot inside code (6.12 head code's `jmp *0f(%rip)`) is read as linked: its
        # section's relocations are those of every instruction, too many to index for it
        reloc = self.image.relocation_target(slot) if kind == 2 else None
        value = self.code_target(reloc if reloc is not None
                                 else self.image.read_pointer(slot) if kind else None)
        self._slots[slot] = value
        return value

    def pointer_value(self, slot: int) -> int | None:
        """The image address (code or data) a slot holds, by relocation or contents."""
        if slot in self._pointers:
            return self._pointers[slot]
        kind = self._section_kind(slot)
        reloc = self.image.relocation_target(slot) if kind == 2 else None
        value = reloc if reloc is not None else self.image.read_pointer(slot) if kind else None
        value = value if value and self._section_kind(value) else None
        self._pointers[slot] = value
        return value

    def is_data(self, address: int) -> bool:
        """Is this inside an allocated section that is not code?"""
        return self._section_kind(address) == 2

    def slot_name(self, slot: int) -> str:
        """A data address by name: the member path inside a hook variable from BTF
        (`x86_init.resources.memory_setup`), else `symbol+0xoff` (a function's name for
        a trampoline)."""
        name = self._slot_names.get(slot)
        if name is None:
            name = self._slot_names[slot] = self._name_slot(slot)
        return name

    def object_name(self, address: int) -> str:
        """A data address code hands on, by name: the object's own name where it is the
        object's start (`&pv_ops` names the whole struct, not its first member), else the
        slot's."""
        sym = self.image.symbol_covering(address)
        if sym is not None and sym.value == address and sym.size:
            return sym.name
        return self.slot_name(address)

    def _name_slot(self, slot: int) -> str:
        func = self.functions.starting_at(slot)
        if func is not None:
            return func.name
        sym = self.image.symbol_covering(slot)
        if sym is None:
            return f"{slot:#x}"
        off = slot - sym.value
        struct = self.knowledge.hook_variables.get(sym.name)
        btf = self._btf() if struct else None
        if btf is not None and struct in btf.structs:
            member = btf.member_path(btf.structs[struct], off)
            if member:
                return sym.name + member
        return f"{sym.name}+{off:#x}" if off else sym.name

    def _btf(self) -> Btf | None:
        """The image's BTF, read once (None without a usable `.BTF`)."""
        if self._btf_read is None:
            section = self.image.section(".BTF")
            try:
                self._btf_read = (Btf(bytes(self.image.section_bytes(section))),) \
                    if section is not None else (None,)
            except EntrycheckError:
                self._btf_read = (None,)
        return self._btf_read[0]

    def boot_facts(self, entry: str, func: Function) -> Facts:
        """What knowledge `boot_facts` says holds for `entry` when `func` runs: its
        variables everywhere, the variables and an argument register of the function
        named."""
        found = self._facts.get(entry)
        if found is None:
            variables, registers, scoped = [], {}, {}
            for fact in self.knowledge.boot_facts:
                if fact.entry != entry:
                    continue
                if fact.variable is None:
                    reg = self.argument_register(fact.argument)
                    if reg:
                        label = f"{fact.function}'s argument {fact.argument} is " \
                                f"{fact.value.describe()}"
                        registers.setdefault(fact.function, []).append(
                            Known(register_named(reg), fact.value, label))
                    continue
                found = self.data_address(fact.variable, fact.struct)
                if found is None:
                    continue
                address, size = found
                label = f"{fact.variable} is {fact.value.describe()}"
                if fact.function is None:
                    variables.append(Known(address, fact.value, label, size))
                else:
                    scoped.setdefault(fact.function, []).append(
                        Known(address, fact.value, f"{label} in {fact.function}", size))
            found = self._facts[entry] = (tuple(variables),
                                          {f: tuple(k) for f, k in registers.items()},
                                          {f: tuple(k) for f, k in scoped.items()})
        return Facts(found[1].get(func.name, ()), found[0] + found[2].get(func.name, ()),
                     self.preserving)

    def data_address(self, variable: str, struct: str | None = None
                     ) -> tuple[int, int] | None:
        """(address, size) of a variable, or of a member path inside it
        (`boot_params.hdr.hardware_subarch`, laid out by the BTF of `struct`); the size is
        0 where the symbol table gives none."""
        name, _, path = variable.partition(".")
        sym = self.image.symbol_named(name)
        if sym is None:
            return None
        if not path:
            return sym.value, sym.size
        btf = self._btf()
        if btf is None or struct not in btf.structs:
            return None
        member = btf.member(btf.structs[struct], path)
        return None if member is None else (sym.value + member[0], member[1])

    def argument_register(self, number: int) -> str:
        """The register of argument `number` (from 1) in the kernel's calling convention
        (x86-64 SysV; i386 kernels use regparm(3): eax, edx, ecx), by full register."""
        regs = ("rdi", "rsi", "rdx", "rcx", "r8", "r9") if self.image.bits == 64 \
            else ("rax", "rdx", "rcx")
        return regs[number - 1] if 0 < number <= len(regs) else ""


class Resolver:
    """One indirect-flow strategy (or the direct edges): see the module docstring."""

    name: ClassVar[str]
    adds: ClassVar[tuple[EdgeKind, ...]] = ()
    reads: ClassVar[str] = ""
    weak: ClassVar[bool] = False  # its edges give way to any other resolver's between the pair

    def __init__(self, ctx: ImageContext):
        self.ctx = ctx

    def decoder_options(self) -> dict:
        return {}

    def starts(self, func: Function) -> Iterable[int]:
        return ()

    def conditional_starts(self, func: Function) -> Iterable[tuple[int, str]]:
        """Decode starts of code that runs only once patched in, with the condition."""
        return ()

    def links(self, func: Function, facts: FunctionFacts) -> Iterable[Link]:
        return ()

    def walks(self, facts: FunctionFacts) -> bool:
        """Does `walk` have anything to do for a function decoded as `facts`? (asked once
        per decoded function, so entries skip the others)"""
        return True

    def walk(self, walk: Walk, func: Function, facts: FunctionFacts) -> Iterable[int]:
        return ()

    def finish(self, walk: Walk) -> None:
        return None
