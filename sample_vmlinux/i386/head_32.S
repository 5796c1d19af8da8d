/* Models arch/x86/kernel/head_32.S (Linux 6.1): the i386 kernel's native entry. */

#define __PAGE_OFFSET	0xc0000000
#define pa(X)		((X) - __PAGE_OFFSET)
#define __BOOT_CS	0x10
#define __BOOT_DS	0x18
#define __KERNEL_CS	0x60
#define __KERNEL_DS	0x68
#define X86_CR0_PG	0x80000000
#define CR0_STATE	0x80050033
#define PARAM_SIZE	4096

	.code32

/* __HEAD */
	.section .head.text,"ax"

/* SYM_CODE_START(startup_32): a global NOTYPE symbol with a size. Paging is off: the
 * code runs at its physical address, so data is reached through pa(). */
	.globl startup_32
startup_32:
	movl pa(initial_stack),%ecx
	lgdt pa(boot_gdt_descr)
	movl $(__BOOT_DS),%eax
	movl %eax,%ds
	movl %eax,%es
	movl %eax,%fs
	movl %eax,%gs
	movl %eax,%ss
	leal -__PAGE_OFFSET(%ecx),%esp

	/* Clear BSS first so that there are no surprises... */
	cld
	xorl %eax,%eax
	movl $pa(__bss_start),%edi
	movl $pa(__bss_stop),%ecx
	subl %edi,%ecx
	shrl $2,%ecx
	rep stosl

	/* Copy bootup parameters out of the way (%esi: the real-mode data). */
	movl $pa(boot_params),%edi
	movl $(PARAM_SIZE/4),%ecx
	rep movsl

	/* Create early pagetables. */
	call mk_early_pgtbl_32

	jmp .Ldefault_entry
	.size startup_32, .-startup_32

/* SYM_FUNC_START(startup_32_smp): the APs' entry. The boot CPU joins it half-way, at
 * .Ldefault_entry (a local label: no symbol), after the call to load_ucode_ap. */
	.globl startup_32_smp
	.type startup_32_smp, @function
startup_32_smp:
	cld
	movl $(__BOOT_DS),%eax
	movl %eax,%ds
	movl %eax,%es
	movl %eax,%fs
	movl %eax,%gs
	movl pa(initial_stack),%ecx
	movl %eax,%ss
	leal -__PAGE_OFFSET(%ecx),%esp
	/* Early load ucode on AP. */
	call load_ucode_ap

.Ldefault_entry:
	movl $(CR0_STATE & ~X86_CR0_PG),%eax
	movl %eax,%cr0
	pushl $0
	popfl
	call verify_cpu

	/* Enable paging */
	movl $pa(initial_page_table),%eax
	movl %eax,%cr3
	movl $CR0_STATE,%eax
	movl %eax,%cr0
	ljmp $__BOOT_CS,$1f	/* Clear prefetch and normalize %eip: now virtual */
1:
	addl $__PAGE_OFFSET,%esp

	/* The setup work we only want to run on the BSP. */
	movl setup_once_ref,%eax
	andl %eax,%eax
	jz 1f
	call *%eax
1:
	lgdt early_gdt_descr
	ljmp $(__KERNEL_CS),$1f
1:	movl $(__KERNEL_DS),%eax
	movl %eax,%ss
	xorl %eax,%eax
	lldt %ax

	call *(initial_code)
1:	jmp 1b
	.size startup_32_smp, .-startup_32_smp

/* verify_cpu.S: SYM_FUNC_START_LOCAL(verify_cpu) */
	.type verify_cpu, @function
verify_cpu:
	pushfl
	xorl %eax,%eax
	cpuid
	popfl
	xorl %eax,%eax
	ret
	.size verify_cpu, .-verify_cpu

/* __INIT */
	.section .init.text,"ax"

/* setup_once: a plain label, as in head_32.S (a LOCAL NOTYPE symbol of size 0). */
setup_once:
	andl $0,setup_once_ref	/* Once is enough, thanks */
	ret

/* SYM_FUNC_START(early_idt_handler_array): two stubs of 9 bytes here (32 in the kernel). */
	.globl early_idt_handler_array
	.type early_idt_handler_array, @function
early_idt_handler_array:
	pushl $0		/* Dummy error code */
	pushl $0		/* 8(%esp) Vector number */
	jmp early_idt_handler_common
	pushl $0
	pushl $1
	jmp early_idt_handler_common
	.size early_idt_handler_array, .-early_idt_handler_array

/* SYM_CODE_START_LOCAL(early_idt_handler_common): 32-bit code only (push %es/%ds do not
 * exist in 64-bit mode). */
early_idt_handler_common:
	cld
	incl %ss:early_recursion_flag
	pushl %fs
	pushl %es
	pushl %ds
	pushl %eax
	pushl %ebp
	pushl %edi
	pushl %esi
	pushl %edx
	pushl %ecx
	pushl %ebx
	movl %esp,%eax		/* args are pt_regs (EAX), trapnr (EDX) */
	movl 48(%esp),%edx
	call early_fixup_exception
	popl %ebx
	popl %ecx
	popl %edx
	popl %esi
	popl %edi
	popl %ebp
	popl %eax
	popl %ds
	popl %es
	popl %fs
	decl %ss:early_recursion_flag
	addl $8,%esp		/* pop the vector and the error code */
	iret
	.size early_idt_handler_common, .-early_idt_handler_common

/* __INITDATA */
	.section .init.data,"aw"
	.align 4
	.globl early_recursion_flag
	.type early_recursion_flag, @object
early_recursion_flag:
	.long 0
	.size early_recursion_flag, 4

/* __REFDATA: the slots startup_32_smp calls through. */
	.data
	.align 4
	.globl initial_code
	.type initial_code, @object
initial_code:
	.long i386_start_kernel
	.size initial_code, 4
	.globl setup_once_ref
	.type setup_once_ref, @object
setup_once_ref:
	.long setup_once
	.size setup_once_ref, 4
	.globl initial_stack
	.type initial_stack, @object
initial_stack:
	.long init_stack_end
	.size initial_stack, 4

	.align 4
	.type boot_gdt_descr, @object
boot_gdt_descr:
	.word 3*8-1
	.long pa(boot_gdt)
	.size boot_gdt_descr, 6
	.align 4
	.type early_gdt_descr, @object
early_gdt_descr:
	.word 3*8-1
	.long boot_gdt
	.size early_gdt_descr, 6
	.align 8
	.type boot_gdt, @object
boot_gdt:
	.quad 0
	.quad 0x00cf9a000000ffff	/* kernel 4GB code at 0x00000000 */
	.quad 0x00cf92000000ffff	/* kernel 4GB data at 0x00000000 */
	.size boot_gdt, 24

	.bss
	.align 4096
	.globl initial_page_table
	.type initial_page_table, @object
initial_page_table:
	.fill 1024,4,0
	.size initial_page_table, 4096
	.type init_stack, @object
init_stack:
	.fill 1024,1,0
init_stack_end:
	.size init_stack, 1024
	.section .note.GNU-stack, "", @progbits
