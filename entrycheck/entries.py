"""Boot entries of an image: the catalogue matched against its symbols and Xen notes."""

from __future__ import annotations

import re
from dataclasses import dataclass

from entrycheck.binary.functions import FunctionTable
from entrycheck.binary.image import XEN_ELFNOTE_ENTRY, XEN_ELFNOTE_PHYS32_ENTRY, Image
from entrycheck.errors import EntrycheckError
from entrycheck.knowledge import EntrySpec, Knowledge
from entrycheck.model import Function

NOTES = {"XEN_ELFNOTE_ENTRY": XEN_ELFNOTE_ENTRY,
         "XEN_ELFNOTE_PHYS32_ENTRY": XEN_ELFNOTE_PHYS32_ENTRY}
_USER_ENTRY = re.compile(r"^([\w.+-]+)=([\w.$]+)(?:@(32|64))?$")


@dataclass(frozen=True)
class Entry:
    """A boot entry found in an image."""

    name: str
    symbol: str
    address: int
    mode: int
    found: tuple[str, ...]   # how it was found: "symbol", "note XEN_ELFNOTE_ENTRY", "user"
    about: str = ""
    warning: str | None = None

    def as_json(self) -> dict:
        out = {"name": self.name, "symbol": self.symbol, "address": f"{self.address:#x}",
               "mode": self.mode, "found": list(self.found), "about": self.about}
        if self.warning:
            out["warning"] = self.warning
        return out


def image_kind(image: Image, knowledge: Knowledge) -> str:
    """`compressed` for the decompressor's vmlinux, else `vmlinux`."""
    names = image.symbols_by_name
    return "compressed" if any(m in names for m in knowledge.compressed_markers) else "vmlinux"


def find_entries(image: Image, functions: FunctionTable, knowledge: Knowledge,
                 user: list[str] = (), header: dict[str, tuple[int, int]] | None = None,
                 ) -> list[Entry]:
    """The catalogued entries present in the image (cross-checked with Xen notes and, for a
    compressed kernel, the bzImage header's entries), then the user's `NAME=SYMBOL[@32]`."""
    kind = image_kind(image, knowledge)
    found = [
        entry for spec in knowledge.entries
        if spec.image == kind and spec.bits in (None, image.bits)
        and (entry := _match(spec, image, functions, header or {})) is not None
    ]
    for text in user:
        entry = parse_user_entry(text, functions)
        found = [e for e in found if e.name != entry.name] + [entry]
    return found


def parse_user_entry(text: str, functions: FunctionTable) -> Entry:
    """An entry from `--entry NAME=SYMBOL[@32|@64]`."""
    m = _USER_ENTRY.match(text)
    if m is None:
        raise EntrycheckError(f"bad --entry {text!r}: expected NAME=SYMBOL or NAME=SYMBOL@32")
    name, symbol, mode = m.group(1), m.group(2), int(m.group(3) or functions.image.bits)
    func = functions.named(symbol)
    if func is None:
        raise EntrycheckError(f"--entry {text}: no code symbol {symbol!r} in the image")
    return Entry(name, func.name, func.start, mode, ("user",))


def select_entry(entries: list[Entry], name: str) -> Entry:
    """The entry called `name`; EntrycheckError listing the known ones when absent."""
    for entry in entries:
        if entry.name == name:
            return entry
    known = ", ".join(e.name for e in entries) or "none"
    raise EntrycheckError(f"no entry {name!r} in this image (entries found: {known})")


def _match(spec: EntrySpec, image: Image, functions: FunctionTable,
           header: dict[str, tuple[int, int]]) -> Entry | None:
    func = next((f for s in spec.symbols if (f := functions.named(s)) is not None), None)
    if spec.header and spec.name in header:
        return _match_header(spec, func, header[spec.name][0], functions)
    note_addr, problem = _note_address(spec, image)
    if func is None and note_addr is None:
        return None
    if func is None:
        return _from_note(spec, image, functions, note_addr)
    found = ("symbol",)
    warning = problem
    if note_addr is not None:
        found += (f"note {spec.note}",)
        if note_addr != func.start:
            warning = (f"{spec.note} gives {note_addr:#x}, symbol {func.name} is at "
                       f"{func.start:#x}")
    return Entry(spec.name, func.name, func.start, spec.mode, found, spec.about, warning)


def _from_note(spec: EntrySpec, image: Image, functions: FunctionTable,
               note_addr: int) -> Entry | None:
    """The entry a note gives when no symbol of the catalogue names it: the function
    there, or, when the note points at code no symbol covers (a symbol zeroed or cut),
    a function made at the note's address, with a warning."""
    holder = functions.at(note_addr)
    found = (f"note {spec.note}",)
    if holder is not None:
        return Entry(spec.name, holder.name, note_addr, spec.mode, found, spec.about)
    name = spec.symbols[0] if spec.symbols else spec.name
    label = name if name in image.symbols_by_name else f"{spec.name}.note_entry"
    func = functions.add_label(note_addr, label)
    if func is None:
        return None
    syms = [s for s in image.symbols_by_name.get(name, ())]
    said = f"symbol {name} is at {syms[0].value:#x}" if syms else f"no symbol {name}"
    return Entry(spec.name, func.name, note_addr, spec.mode, found, spec.about,
                 f"{spec.note} gives {note_addr:#x}, code no symbol starts ({said}): the "
                 "entry starts there")


def note_warnings(image: Image, knowledge: Knowledge, entries: list[Entry]) -> list[str]:
    """What the image's Xen notes say that no entry found stands for (a note pointing
    nowhere, or at no code): said, not dropped."""
    kind = image_kind(image, knowledge)
    names = {e.name for e in entries}
    out = []
    for spec in knowledge.entries:
        if spec.note is None or spec.name in names or spec.image != kind \
                or spec.bits not in (None, image.bits):
            continue
        value = image.xen_note(NOTES[spec.note])
        if value is None:
            continue
        addr, problem = _note_address(spec, image)
        where = problem or f"{spec.note} gives {addr:#x}, where no code is"
        out.append(f"{where}: no {spec.name} entry")
    return out


def _match_header(spec: EntrySpec, func: Function | None, addr: int,
                  functions: FunctionTable) -> Entry | None:
    """An entry the bzImage header gives, checked against the compressed vmlinux's symbols."""
    holder = functions.at(addr)
    if func is None:
        if holder is None:
            return None
        return Entry(spec.name, holder.name, addr, spec.mode, ("header",), spec.about)
    warning = None if addr == func.start else (
        f"the bzImage header gives {addr:#x}, symbol {func.name} is at {func.start:#x}")
    return Entry(spec.name, func.name, func.start, spec.mode, ("symbol", "header"), spec.about,
                 warning)


def _note_address(spec: EntrySpec, image: Image) -> tuple[int | None, str | None]:
    """(virtual address the entry's note gives, or None; what is wrong with the note)."""
    if spec.note is None:
        return None, None
    value = image.xen_note(NOTES[spec.note])
    if value is None:
        return None, None
    if spec.note == "XEN_ELFNOTE_PHYS32_ENTRY":
        addr = image.phys_to_virt(value)
        if addr is None:
            return None, (f"{spec.note} gives physical {value:#x}, in no PT_LOAD segment "
                          "(ignored)")
        return addr, None
    return value, None
