"""The project's own types, shared by the decode, graph, path and output stages."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class EdgeKind(StrEnum):
    """How control leaves one function for another."""

    CALL = "call"                  # direct call
    JUMP = "jump"                  # direct jmp/jcc into another function (tail call)
    FALLTHROUGH = "fallthrough"    # runs off the end into the next symbol
    FAR = "far"                    # far jump / far return (lret), often a mode switch
    SLOT = "indirect-slot"         # call/jmp through a data slot whose content is known
    REGISTER = "indirect-register" # call/jmp through a register loaded with a constant
    OPS = "indirect-ops"           # call through an ops-table slot written on the entry's path
    EXCEPTION = "exception"        # a handler the function installs (IDT), entered on a fault
    ALTERNATIVE = "alternative"    # a call/jmp in replacement code (.altinstr_replacement)
    HANDOFF = "handoff"            # the compressed kernel's jump into the decompressed vmlinux
    INLINED = "inlined"            # a static inline helper's code inside its caller (DWARF)


@dataclass(frozen=True)
class Transfer:
    """One control transfer out of a function, as decoded."""

    site: int                 # address of the instruction
    kind: EdgeKind
    target: int | None        # None: unresolved indirect
    mode: int = 64            # mode of the code at the target
    slot: int | None = None   # data slot read, for slot-based transfers
    text: str = ""            # the instruction, for reports


@dataclass
class FunctionFacts:
    """What decoding one function found."""

    start: int
    mode: int
    transfers: list[Transfer] = field(default_factory=list)
    unresolved: list[Transfer] = field(default_factory=list)
    stores: list[tuple[int, int, int]] = field(default_factory=list)  # (site, slot, value)
    data_refs: list[tuple[int, int]] = field(default_factory=list)    # (site, address)
    privileged: list[tuple[int, str]] = field(default_factory=list)   # (site, instruction)
    returns: bool = False
