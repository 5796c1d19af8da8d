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

from collections.abc import Iterable
from typing import TYPE_CHECKING, ClassVar, NamedTuple

from entrycheck.binary.functions import FunctionTable
from entrycheck.binary.image import Image
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

    @classmethod
    def of(cls, site: Site, kind: EdgeKind, target: int | None = None,
           via: str | None = None) -> Link:
        """The link of a decoded site (its target unless another is given); a site on the
        way to BUG() or panic() links on the fault layer."""
        if site.doomed:
            kind, via = EdgeKind.ERROR_PATH, via or "on the way to BUG() or panic()"
        return cls(site.address, site.target if target is None else target, kind, site.mode,
                   site.text, via, not site.call, condition=site.condition)


class ImageContext:
    """One image as the resolvers see it: bytes, symbols, special sections, knowledge."""

    def __init__(self, image: Image, functions: FunctionTable, knowledge: Knowledge,
                 kind: str):
        self.image = image
        self.functions = functions
        self.knowledge = knowledge
        self.kind = kind  # "vmlinux" or "compressed"
        self.special = SpecialSections(image, knowledge)

    def addresses(self, which: str) -> frozenset[int]:
        """Start addresses of the functions a knowledge list names (compiler suffixes
        stripped), for this image."""
        return self.functions.index.matching(self.knowledge.names(which, self.kind))

    def functions_named(self, names: Iterable[str]) -> list[Function]:
        return [f for n in names for f in self.functions.all_named(n)]

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

    def pointer_value(self, slot: int) -> int | None:
        """The image address (code or data) a slot holds, by relocation or contents."""
        reloc = self.image.relocation_at(slot)
        value = reloc.target if reloc is not None else self.image.read_pointer(slot)
        return value if value and self.image.section_at(value) is not None else None

    def is_data(self, address: int) -> bool:
        """Is this inside an allocated section that is not code?"""
        section = self.image.section_at(address)
        return section is not None and not section.executable

    def slot_name(self, slot: int) -> str:
        """`symbol+0xoff` for a data address (a function's name for a trampoline)."""
        func = self.functions.starting_at(slot)
        if func is not None:
            return func.name
        sym = self.image.symbol_covering(slot)
        if sym is None:
            return f"{slot:#x}"
        off = slot - sym.value
        return f"{sym.name}+{off:#x}" if off else sym.name

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

    def walk(self, walk: Walk, func: Function, facts: FunctionFacts) -> Iterable[int]:
        return ()

    def finish(self, walk: Walk) -> None:
        return None
