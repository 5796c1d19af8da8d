"""The pointers a data object holds: by the relocations inside it where the image keeps
them, else pointer-sized words that point into the image. A static call's key
(`__SCK__name`) is no such object: the target it holds is the trampoline's, which the
static-calls resolver follows (and replaces where the entry's path updates it)."""

from __future__ import annotations

from entrycheck.resolve.base import ImageContext, per_image
from entrycheck.resolve.static_call import STATIC_CALL_KEY_PREFIX

MAX_OBJECT = 1 << 16  # bytes of one object looked at (an LSM's hook list is ~10 KiB)


def code_pointers(ctx: ImageContext, address: int) -> tuple[tuple[int, int], ...]:
    """(slot, function start) stored in the data object that holds `address`."""
    bounds = _object(ctx, address)
    return () if bounds is None else _code_in_object(ctx, *bounds)


def pointers(ctx: ImageContext, address: int) -> tuple[tuple[int, int], ...]:
    """(slot, value) of every image address (code or data) stored in the data object
    holding `address`."""
    bounds = _object(ctx, address)
    return () if bounds is None else _in_object(ctx, *bounds)


@per_image
def _object(ctx: ImageContext, address: int) -> tuple[int, int] | None:
    sym = ctx.image.symbol_covering(address)
    if sym is None or not sym.size or sym.size > MAX_OBJECT \
            or sym.name.startswith(STATIC_CALL_KEY_PREFIX):
        return None
    section = ctx.image.section_at(sym.value)
    if section is None or section.executable:
        return None
    return sym.value, sym.value + sym.size


@per_image
def _in_object(ctx: ImageContext, start: int, end: int) -> tuple[tuple[int, int], ...]:
    image = ctx.image
    section = image.section_at(start)
    step = image.bits // 8
    relocs = image.relocation_targets(section)
    out = []
    if relocs:
        for slot in range(start, end, step):
            target = relocs.get(slot)
            if target is not None and image.section_at(target) is not None:
                out.append((slot, target))
        return tuple(out)
    data = image.read(start, end - start) or b""
    for off in range(0, len(data) - step + 1, step):
        value = int.from_bytes(data[off : off + step], "little")
        if value and image.section_at(value) is not None:
            out.append((start + off, value))
    return tuple(out)


@per_image
def _code_in_object(ctx: ImageContext, start: int, end: int) -> tuple[tuple[int, int], ...]:
    return tuple((s, t) for s, t in _in_object(ctx, start, end)
                 if ctx.functions.starting_at(t) is not None)


def reachable_code(ctx: ImageContext, address: int, depth: int) -> tuple[tuple[int, int], ...]:
    """(slot, function) held by the object at `address` or, up to `depth` levels, by the
    objects it points to. An array of pointers (`pci_dev_groups[]`: NULL-terminated
    pointers to `struct attribute_group`; a pointer variable is an array of one) is no
    level of its own: the objects it lists are on its level (`pci_bus_type >
    pci_dev_groups[] > pci_dev_group > is_visible` is two levels)."""
    bounds = _object(ctx, address)
    return () if bounds is None else _reachable(ctx, bounds[0], depth)


@per_image
def _reachable(ctx: ImageContext, address: int, depth: int) -> tuple[tuple[int, int], ...]:
    out: list[tuple[int, int]] = []
    found: set[int] = set()
    done: set[int] = set()  # objects looked at, each on the first level that lists it
    level = [address]
    for _ in range(depth):
        deeper: list[int] = []
        for obj in level:  # grows while it is read: the objects a pointer array lists
            if obj in done:
                continue
            done.add(obj)
            held = pointers(ctx, obj)
            listed = obj != address and _pointer_array(ctx, obj, held)
            for slot, value in held:
                if ctx.functions.starting_at(value) is not None:
                    if value not in found:
                        found.add(value)
                        out.append((slot, value))
                elif value not in done and ctx.is_data(value):
                    (level if listed else deeper).append(value)
        level = deeper
    return tuple(out)


def _pointer_array(ctx: ImageContext, obj: int, held: tuple[tuple[int, int], ...]) -> bool:
    """Is the object at `obj`, holding the pointers `held`, an array of pointers to data:
    one in each word from its start, the last word perhaps NULL?"""
    bounds = _object(ctx, obj)
    if bounds is None or not held:
        return False
    start, end = bounds
    size = ctx.image.bits // 8
    words, extra = divmod(end - start, size)
    if extra or not words - 1 <= len(held) <= words \
            or any(slot != start + i * size or not ctx.is_data(value)
                   for i, (slot, value) in enumerate(held)):
        return False
    return len(held) == words or ctx.image.read_pointer(end - size) == 0
