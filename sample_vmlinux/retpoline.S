/* Models arch/x86/lib/retpoline.S (6.1, RETPOLINE): the indirect thunk for %rax. */

	.section .text, "ax"
	.code64

/* SYM_FUNC_START(__x86_indirect_thunk_rax): speculation trap, then ret to *%rax. */
	.balign 32
	.globl __x86_indirect_thunk_rax
	.type __x86_indirect_thunk_rax, @function
__x86_indirect_thunk_rax:
	call	.Ldo_rop_rax
.Lspec_trap_rax:
	pause
	lfence
	jmp	.Lspec_trap_rax
.Ldo_rop_rax:
	mov	%rax, (%rsp)
	ret
	.size __x86_indirect_thunk_rax, .-__x86_indirect_thunk_rax

	.section .note.GNU-stack, "", @progbits
