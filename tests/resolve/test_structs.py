"""entrycheck.resolve.structs: the code pointers a data object holds (by relocation in the
sample, which keeps them with --emit-relocs), and those of the objects it points to."""

from __future__ import annotations

from entrycheck.resolve.structs import code_pointers, pointers, reachable_code

from ..snippets import assemble
from .conftest import builder_for


def test_pv_ops_holds_the_native_handlers(built, expected):
    ctx = built.builder.ctx
    pv_ops = built.image.symbol_address(expected["ops_table"]["symbol"])
    held = code_pointers(ctx, pv_ops + 8)  # any address inside the object
    assert sorted(built.functions.at(t).name for _, t in held) == \
        expected["ops_table"]["native_targets"]
    assert all(pv_ops <= slot < pv_ops + 0x100 for slot, _ in held)
    assert [t for _, t in reachable_code(ctx, pv_ops, 1)] == [t for _, t in held]


def test_nothing_outside_sized_data(built):
    ctx = built.builder.ctx
    assert pointers(ctx, built.addr("early_cpu_init")) == ()  # code, not a data object
    assert reachable_code(ctx, 0x10, 2) == ()


POINTER_ARRAY = r"""
    .text
    .globl startup_64
startup_64:
    lea bus(%rip), %rdi
    lea plain(%rip), %rdi
    ret
is_visible: ret
show: ret
too_deep: ret
    .data
    .macro object name
    .type \name, @object
    .size \name, 16
    .endm
    object bus          # struct bus_type: .dev_groups = groups
bus: .quad 0, groups
    .type groups, @object
    .size groups, 24
groups:                 # const struct attribute_group *groups[] = { &group, NULL }
    .quad group, other_group, 0
    object group        # struct attribute_group: .attrs, .is_visible
group: .quad attrs, is_visible
    object other_group
other_group: .quad 0, show
    object attrs        # a third level: not followed
attrs: .quad 0, too_deep
    object plain        # a struct (a number beside its pointer) is a level of its own
plain: .quad 7, middle
    object middle
middle: .quad 0, group
    object either_order # the struct `middle` first, then the array listing `group`:
either_order: .quad middle, groups  # group is still on the array's level
    object tail         # pointers, then a number (not NULL): a struct, not an array
tail: .quad group, 5
    object holder
holder: .quad 0, tail
"""


def test_an_array_of_pointers_is_no_level_of_its_own():
    """bus > groups[] > group > is_visible is two levels: the pointer array lists objects
    on its own level, whatever else met `group` first; `attrs` is a third level, and
    `plain > middle > group` has no array, nor has `holder > tail > group` (tail ends in
    a number, not NULL)."""
    snip = assemble(POINTER_ARRAY)
    b = builder_for(snip.image)
    ctx = b.builder.ctx

    def reached(label: str) -> set[str]:
        return b.names(t for _, t in reachable_code(ctx, snip[label], 2))

    assert reached("bus") == {"is_visible", "show"}
    assert reached("plain") == set()
    assert b.names(t for _, t in reachable_code(ctx, snip["plain"], 3)) == \
        {"is_visible"}
    assert reached("either_order") == {"is_visible", "show"}
    assert reached("holder") == set()
