"""entrycheck.resolve.structs: the code pointers a data object holds (by relocation in the
sample, which keeps them with --emit-relocs), and those of the objects it points to."""

from __future__ import annotations

from entrycheck.resolve.structs import code_pointers, pointers, reachable_code


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
