/* Models arch/x86/kernel/head_64.S: the native 64-bit entry startup_64 and the far return into C. */

	.section .head.text, "ax"
	.code64

/* SYM_CODE_START(startup_64): NOTYPE, sized by SYM_CODE_END. */
	.globl startup_64
startup_64:
	leaq	init_stack_end(%rip), %rsp
	leaq	_text(%rip), %rdi
	call	startup_64_setup_env
	call	__startup_64
	jmp	common_startup_64
	.type startup_64, @notype
	.size startup_64, .-startup_64

/* SYM_CODE_START(secondary_startup_64) with SYM_INNER_LABEL(common_startup_64). */
	.globl secondary_startup_64
secondary_startup_64:
	call	verify_cpu

	.globl common_startup_64
	.type common_startup_64, @notype
common_startup_64:
	/* 6.1-style: push __KERNEL_CS and initial_code, then far-return into C. */
	movq	initial_code(%rip), %rax
	pushq	$0x10
	pushq	%rax
	lretq
	.type secondary_startup_64, @notype
	.size secondary_startup_64, .-secondary_startup_64

/* Models arch/x86/kernel/verify_cpu.S: SYM_FUNC_START_LOCAL-like asm routine, here global. */
	.section .text, "ax"
	.globl verify_cpu
verify_cpu:
	pushf
	pushq	%rbx
	movl	$1, %eax
	cpuid
	popq	%rbx
	popf
	xorl	%eax, %eax
	ret
	.type verify_cpu, @notype
	.size verify_cpu, .-verify_cpu

/* Models early_idt_handler_array: idt_setup_early_handler stores its address in the IDT. */
	.section .init.text, "ax"
	.globl early_idt_handler_array
early_idt_handler_array:
	cld
	iretq
	.type early_idt_handler_array, @notype
	.size early_idt_handler_array, .-early_idt_handler_array

/* SYM_DATA(initial_code, .quad x86_64_start_kernel): R_X86_64_64 in .rela.data. */
	.section .data, "aw"
	.balign 8
	.globl initial_code
	.type initial_code, @object
initial_code:
	.quad	x86_64_start_kernel
	.size initial_code, .-initial_code

/* Models init_thread_union: the boot stack lives in .data, not .bss, so clear_bss keeps it. */
	.balign 16
	.globl init_stack
	.type init_stack, @object
init_stack:
	.skip	4096
	.size init_stack, .-init_stack
	.globl init_stack_end
init_stack_end:

	.section .note.GNU-stack, "", @progbits
