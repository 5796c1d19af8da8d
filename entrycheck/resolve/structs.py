"""The code pointers a data object holds: by the relocations inside it where the image
keeps them, else pointer-sized words that are function starts."""

from __future__ import annotations

from entrycheck.resolve.base import ImageContext

MAX_OBJECT = 4096  # bytes of one object looked at


def code_pointers(ctx: ImageContext, address: int) -> list[int]:
    """Function starts stored in the data object that holds `address`."""
    image = ctx.image
    sym = image.symbol_covering(address)
    if sym is None or not sym.size or sym.size > MAX_OBJECT:
        return []
    start, end = sym.value, sym.value + sym.size
    section = image.section_at(start)
    if section is None or section.executable:
        return []
    out = []
    relocs = image.relocations_for(section)
    step = image.bits // 8
    if relocs:
        for slot in range(start, end, step):
            reloc = relocs.get(slot)
            if reloc is not None and ctx.functions.starting_at(reloc.target) is not None:
                out.append(reloc.target)
        return out
    data = image.read(start, sym.size) or b""
    for off in range(0, len(data) - step + 1, step):
        value = int.from_bytes(data[off : off + step], "little")
        if ctx.functions.starting_at(value) is not None:
            out.append(value)
    return out
