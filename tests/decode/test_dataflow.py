"""entrycheck.decode.dataflow: FunctionDecoder on hand-written assembly (linked at the
kernel's text address by binutils): constants in registers and on the stack, slots,
stores, call arguments, `.altinstr_aux` branches, traps that return, jump tables, doomed
suffixes, fall-through and conditional starts."""

from __future__ import annotations

import pytest

from entrycheck.decode.dataflow import FunctionDecoder
from entrycheck.model import How, Site, Store

from ..snippets import assemble

# Each function `name` ends at `name_end`; `g`, `h`, `panic_fn` are plain targets.
SOURCE = r"""
    .text
g:  ret
g_end:
h:  ret
h_end:
panic_fn: hlt
panic_fn_end:
return_thunk: ret
return_thunk_end:
thunk_rax: jmp *%rax
thunk_rax_end:

mov_jmp:                    # mov $sym, %rax; mov %rax, %rdx; jmp *%rdx
    movq $g, %rax
    mov %rax, %rdx
    jmp *%rdx
mov_jmp_end:

lea_call:                   # lea sym(%rip): known; a call clobbers it
    lea g(%rip), %rcx
    call *%rcx
lea_call_site2:
    call *%rcx
    ret
lea_call_end:

xor_clobbers:
    lea g(%rip), %rax
    xor %eax, %eax
    call *%rax
    ret
xor_clobbers_end:

own_address:                # call 1f; 1: pop: the code's own address, moved by a constant
    call 1f
1:  pop %rax
    add $(g - 1b), %rax
    jmp *%rax
own_address_end:

far_return:                 # push $sel; push %rax; lretq
    lea h(%rip), %rax
    push $0x10
    push %rax
    lretq
far_return_end:

through_slot:
    call *slot(%rip)
    jmp *empty_slot(%rip)
through_slot_end:

stores:
    lea g(%rip), %rax
    mov %rax, slot(%rip)
stores_imm:
    movq $h, empty_slot(%rip)
    ret
stores_end:

arguments:
    lea g(%rip), %rdi
    mov $5, %esi
    call h
    ret
arguments_end:

privileged:
    mov %rax, %cr4
    wrmsr
    ret
privileged_end:

via_aux:                    # static_cpu_has(): jmp to .altinstr_aux, which jumps back
    jmp aux_snippet
aux_yes:
    call g
    ret
aux_no:
    call h
    ret
via_aux_end:

int3_resumes:
    int3
    call g
    ret
int3_resumes_end:

int3_padding:
    int3
    int3
    call g
    ret
int3_padding_end:

ud1_resumes:
    .byte 0x67, 0x48, 0x0f, 0xb9, 0x3a      # ud1 (%edx),%rdi: 7.x __WARN_trap
    call g
    ret
ud1_resumes_end:

ud2_traps:
    call h
ud2_site:
    ud2
    call g
    ret
ud2_traps_end:

bug_suffix:                 # if (x) { pr_err(...); BUG(); }: only the calls after the jcc
    call g
    test %edi, %edi
    jz 1f
    call h
bug_site:
    ud2
1:  ret
bug_suffix_end:

panic_suffix:
    call g
    call panic_fn
    call h
panic_suffix_end:

jump_table:                 # switch (x) { case 0: g(); case 1: h(); }
    cmp $1, %edi
    ja 3f
    mov %edi, %eax
    jmp *table(,%rax,8)
case0:
    call g
    ret
case1:
    call h
    ret
3:  ret
jump_table_end:

thunks:
    movq $g, %rax
    call thunk_rax
    jmp return_thunk
thunks_end:

falls:                      # asm that runs off its end into the next symbol
    nop
falls_end:
next_fn:
    ret
next_fn_end:

falls_after_call:
    call panic_fn
falls_after_call_end:
next_fn2:
    ret
next_fn2_end:

jump_join:                  # x = g; if (c) x = h; x(): two ways into 3, two values
    movq $g, %rax
    cmpb $0, feature(%rip)
    je 2f
    jmp 3f
2:  movq $h, %rax
3:  call *%rax
    ret
jump_join_end:

agreeing_join:              # both ways into 1 hold g: the join keeps it
    movq $g, %rax
    cmpb $0, feature(%rip)
    je 1f
    cmpb $1, feature(%rip)
    je 1f
    ret
1:  call *%rax
    ret
agreeing_join_end:

optional_hook:              # if (hook && !hook()): the taken side calls what was loaded
    mov empty_slot(%rip), %rax
    test %rax, %rax
    jne 1f
    ret
1:  call *%rax
    ret
optional_hook_end:

struct_copy:                # hooks = ops: a rep movs of a struct holding g
    movq $slot, %rsi
    movq $copy_to, %rdi
    movl $4, %ecx
struct_copy_movs:
    rep movsl
    ret
struct_copy_end:

indexed:                    # add $array, %reg (an unknown index): the array's address
    addq $g, %rsi           # of code stubs (irq_entries_start)
    addq $copy_to, %rbx     # of data (supported_fields[])
    addq $8, %rcx           # a number (a per-CPU offset, a size): no address
    addq $mov_jmp+1, %rdx   # inside a function: no function's address
    movl empty_slot(%rip), %eax
    addq $slot, %rax        # an index loaded from memory: the array's address too
    ret
indexed_end:

conditional:
    call g
    ret
cond_block:
    call h
    ret
conditional_end:

    .section .altinstr_aux,"ax"
aux_snippet:
    testb $1, feature(%rip)
    jnz aux_yes
    jmp aux_no

    .data
    .balign 8
table:  .quad case0, case1
    .quad 0
slot:   .quad g
empty_slot: .quad 0
feature: .byte 0
    .balign 8
copy_to: .quad 0, 0
"""

NAMES = ["g", "h", "panic_fn", "return_thunk", "thunk_rax", "mov_jmp", "lea_call",
         "xor_clobbers", "own_address", "far_return", "through_slot", "stores", "arguments",
         "privileged", "via_aux", "int3_resumes", "int3_padding", "ud1_resumes", "ud2_traps",
         "bug_suffix", "panic_suffix", "jump_table", "thunks", "falls", "next_fn",
         "falls_after_call", "next_fn2", "optional_hook", "jump_join", "agreeing_join",
         "struct_copy", "indexed", "conditional"]


@pytest.fixture(scope="module")
def snip():
    return assemble(SOURCE)


@pytest.fixture(scope="module")
def functions(snip):
    return {n: snip.function(n, f"{n}_end") for n in NAMES}


def decode(snip, functions, name: str, *, mode: int = 64, starts=(), conditional=(),
           **options):
    """FunctionDecoder facts of one snippet function (slot `slot` holds g)."""
    view = snip.view(list(functions.values()), slots={snip["slot"]: snip["g"]})
    return FunctionDecoder(view, 64, **options).decode(functions[name], mode, starts,
                                                       conditional)


def targets(facts, how: How | None = None) -> list[int | None]:
    return [s.target for s in facts.sites if how is None or s.how == how]


def test_mov_constant_survives_a_register_move(snip, functions):
    facts = decode(snip, functions, "mov_jmp")
    assert facts.sites == [Site(snip["mov_jmp_end"] - 2, False, How.REGISTER, snip["g"], 64)]
    assert not facts.returns


def test_lea_constant_until_a_call_clobbers_it(snip, functions):
    facts = decode(snip, functions, "lea_call")
    first, second = facts.sites
    assert (first.how, first.call, first.target) == (How.REGISTER, True, snip["g"])
    assert second.address == snip["lea_call_site2"]
    assert (second.how, second.target) == (How.REGISTER, None)
    assert facts.returns


def test_xor_forgets_the_constant(snip, functions):
    assert targets(decode(snip, functions, "xor_clobbers")) == [None]


def test_own_address_adjusted_by_a_constant(snip, functions):
    """`call 1f; 1: pop %rax; add $(g-1b),%rax; jmp *%rax` lands on g."""
    facts = decode(snip, functions, "own_address")
    assert [(s.how, s.target) for s in facts.sites] == [(How.REGISTER, snip["g"])]


def test_far_return_through_the_stack(snip, functions):
    facts = decode(snip, functions, "far_return")
    site, = facts.sites
    assert (site.how, site.target, site.mode) == (How.STACK, snip["h"], 64)
    assert site.address == snip["far_return_end"] - 2  # lretq: 48 cb


def test_slots_known_and_empty(snip, functions):
    facts = decode(snip, functions, "through_slot")
    known, empty = facts.sites
    assert (known.how, known.call, known.target, known.slot) == (
        How.SLOT, True, snip["g"], snip["slot"])
    assert (empty.how, empty.call, empty.target, empty.slot) == (
        How.SLOT, False, None, snip["empty_slot"])
    assert facts.data_refs == [snip["slot"], snip["empty_slot"]]
    assert facts.returns  # a tail jump through an unknown slot may return


def test_a_branch_target_starts_with_the_registers_at_the_branch(snip, functions):
    """`x86_init.pci.arch_init && !x86_init.pci.arch_init()`: the call on the taken side
    goes through %rax, loaded from the slot before the test: a slot site (a store into the
    slot, such as Xen PV's pci_xen_init, then gives its target), not an unknown register."""
    facts = decode(snip, functions, "optional_hook")
    site, = facts.sites
    assert (site.how, site.call, site.target, site.slot) == (
        How.REGISTER, True, None, snip["empty_slot"])


def test_a_join_of_different_values_knows_none(snip, functions):
    """Where two ways into a branch target bring different registers, the target is
    decoded again without them: the call is unresolved, not resolved to one path's value
    (the way in decoded first must not decide for the other)."""
    facts = decode(snip, functions, "jump_join")
    site, = facts.sites
    assert (site.how, site.target, site.slot) == (How.REGISTER, None, None)


def test_a_join_of_the_same_values_keeps_them(snip, functions):
    site, = decode(snip, functions, "agreeing_join").sites
    assert (site.how, site.target) == (How.REGISTER, snip["g"])


def test_stores_of_code_addresses(snip, functions):
    facts = decode(snip, functions, "stores")
    assert facts.stores == [Store(snip["stores_imm"] - 7, snip["slot"], snip["g"]),
                            Store(snip["stores_imm"], snip["empty_slot"], snip["h"])]


def test_a_struct_copy_stores_the_code_addresses_it_copies(snip, functions):
    """16 bytes from `slot` (g, then empty_slot's 0): one store, into copy_to."""
    facts = decode(snip, functions, "struct_copy")
    assert facts.stores == [Store(snip["struct_copy_movs"], snip["copy_to"], snip["g"], True)]


def test_an_array_indexed_by_adding_its_address_is_taken(snip, functions):
    facts = decode(snip, functions, "indexed")
    assert facts.code_refs == [snip["g"]]
    assert facts.data_addrs == [snip["copy_to"], snip["slot"]]


def test_constant_arguments_of_a_direct_call(snip, functions):
    facts = decode(snip, functions, "arguments")
    site, = facts.sites
    assert (site.how, site.target) == (How.DIRECT, snip["h"])
    assert site.args == (("rdi", snip["g"]), ("rsi", 5))
    assert set(facts.code_refs) == {snip["g"]}  # g's address escapes into the callee


def test_privileged_instructions_listed(snip, functions):
    assert decode(snip, functions, "privileged").privileged == ["mov cr4, rax", "wrmsr"]


def test_altinstr_aux_branches_are_followed(snip, functions):
    aux = snip.image.section(".altinstr_aux")
    facts = decode(snip, functions, "via_aux", aux=[(aux.addr, aux.addr + aux.size)])
    assert sorted(targets(facts, How.DIRECT)) == [snip["g"], snip["h"]]  # both arms
    # without the aux range, the jump leaves for code no function holds: nothing behind it
    plain = decode(snip, functions, "via_aux")
    assert targets(plain) == [snip["aux_snippet"]]


def test_int3_resumes_unless_padding(snip, functions):
    assert targets(decode(snip, functions, "int3_resumes")) == [snip["g"]]
    assert targets(decode(snip, functions, "int3_padding")) == []


def test_ud1_resumes(snip, functions):
    """7.x WARN(): `ud1` reports and comes back (capstone 5 lost sync right here)."""
    facts = decode(snip, functions, "ud1_resumes")
    assert targets(facts) == [snip["g"]] and facts.returns


def test_ud2_ends_the_run_unless_it_is_a_warn(snip, functions):
    assert targets(decode(snip, functions, "ud2_traps")) == [snip["h"]]
    resumed = decode(snip, functions, "ud2_traps", resuming_traps=[snip["ud2_site"]])
    assert targets(resumed) == [snip["h"], snip["g"]]


def test_bug_marks_the_calls_since_the_last_branch_doomed(snip, functions):
    facts = decode(snip, functions, "bug_suffix", bug_traps=[snip["bug_site"]])
    assert [(s.target, s.doomed) for s in facts.sites] == [(snip["g"], False),
                                                            (snip["h"], True)]
    plain = decode(snip, functions, "bug_suffix")  # a ud2 not in __bug_table: no doom
    assert not any(s.doomed for s in plain.sites)


def test_calls_before_an_error_exit_are_doomed(snip, functions):
    facts = decode(snip, functions, "panic_suffix", noreturn=[snip["panic_fn"]],
                   error_exits=[snip["panic_fn"]])
    # the calls before panic() print the error; the call of panic() is the error exit
    assert [(s.target, s.doomed) for s in facts.sites] == [(snip["g"], True),
                                                            (snip["panic_fn"], False)]
    # noreturn alone: the run ends at panic_fn (h is dead code), nothing doomed
    facts = decode(snip, functions, "panic_suffix", noreturn=[snip["panic_fn"]])
    assert [(s.target, s.doomed) for s in facts.sites] == [(snip["g"], False),
                                                            (snip["panic_fn"], False)]


def test_jump_table_cases_decoded_in_place(snip, functions):
    facts = decode(snip, functions, "jump_table")
    table = [s for s in facts.sites if s.how == How.TABLE]
    assert [s.address for s in table] == [snip["case0"] - 7]  # jmp *table(,%rax,8): 7 bytes
    assert sorted(targets(facts, How.DIRECT)) == [snip["g"], snip["h"]]


def test_thunks(snip, functions):
    facts = decode(snip, functions, "thunks", return_thunks=[snip["return_thunk"]],
                   indirect_thunks={snip["thunk_rax"]: "rax"})
    through, ret = facts.sites
    assert (through.how, through.call, through.target, through.thunk) == (
        How.REGISTER, True, snip["g"], snip["thunk_rax"])
    assert (ret.how, ret.call, ret.target) == (How.DIRECT, False, snip["return_thunk"])
    assert facts.returns  # `jmp __x86_return_thunk` is `ret`


def test_fallthrough_into_the_next_symbol(snip, functions):
    site, = decode(snip, functions, "falls").sites
    assert (site.how, site.target, site.after_call) == (How.FALLTHROUGH, snip["next_fn"], None)
    after = decode(snip, functions, "falls_after_call")
    assert [(s.how, s.target, s.after_call) for s in after.sites] == [
        (How.DIRECT, snip["panic_fn"], None),
        (How.FALLTHROUGH, snip["next_fn2"], snip["panic_fn"])]
    # a trailing call to a noreturn function does not fall through
    dead = decode(snip, functions, "falls_after_call", noreturn=[snip["panic_fn"]])
    assert [s.how for s in dead.sites] == [How.DIRECT]


def test_conditional_starts_carry_their_condition(snip, functions):
    facts = decode(snip, functions, "conditional",
                   conditional=[(snip["cond_block"], "a static key enabled")])
    assert [(s.target, s.condition) for s in facts.sites] == [
        (snip["g"], None), (snip["h"], "a static key enabled")]
    # an unconditional extra start: the same site, no condition
    facts = decode(snip, functions, "conditional", starts=[snip["cond_block"]])
    assert [(s.target, s.condition) for s in facts.sites] == [(snip["h"], None)]


def test_instruction_count(snip, functions):
    """Every instruction decoded once: mov, mov, jmp."""
    assert decode(snip, functions, "mov_jmp").instructions == 3
