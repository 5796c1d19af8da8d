/* Models arch/x86/boot/compressed/head_64.S (Linux 6.1.192): startup_32 at address 0
 * (.code32: GDT, paging, EFER.LME, far return into long mode), startup_64 at 0x200 (the
 * 64-bit ABI entry: relocates the image and jumps to .Lrelocated, which clears the BSS,
 * runs the GOT fixup, calls extract_kernel and jumps into the decompressed kernel).
 * `adjust_got` models the GOT fixup that head_64.S had until 5.10; 6.1 has none. */
#include "boot.h"

#define rva(X) ((X) - startup_32)

	.hidden	_bss
	.hidden	_ebss
	.hidden	_end
	.hidden	_got
	.hidden	_egot

	.section ".head.text", "ax"
	.code32
	.globl	startup_32
	.type	startup_32, @function
startup_32:
	cld
	cli
	/* boot_params' scratch field at 0x1e4 is a mini stack for the call below */
	leal	(0x1e4 + 4)(%esi), %esp
	call	1f
1:	popl	%ebp
	subl	$rva(1b), %ebp		/* %ebp: where we were loaded */

	leal	rva(gdt)(%ebp), %eax
	movl	%eax, 2(%eax)
	lgdt	(%eax)
	movl	$__KERNEL_DS, %eax
	movl	%eax, %ds
	movl	%eax, %es
	movl	%eax, %fs
	movl	%eax, %gs
	movl	%eax, %ss
	leal	rva(boot_stack_end)(%ebp), %esp

	/* Reload CS with a far return through the new GDT */
	pushl	$__KERNEL_CS
	leal	rva(1f)(%ebp), %eax
	pushl	%eax
	lretl
1:
	call	verify_cpu
	testl	%eax, %eax
	jnz	.Lno_longmode

	movl	%ebp, %ebx		/* relocatable: decompress where we are */

	/* Enable PAE mode */
	movl	%cr4, %eax
	orl	$X86_CR4_PAE, %eax
	movl	%eax, %cr4

	/* Build the 4 GiB identity map: PML4 -> PDPT -> 4 PDs of 2 MiB pages */
	leal	rva(pgtable)(%ebx), %edi
	xorl	%eax, %eax
	movl	$(BOOT_PGT_SIZE / 4), %ecx
	rep	stosl
	leal	rva(pgtable)(%ebx), %edi
	leal	0x1007(%edi), %eax
	movl	%eax, 0(%edi)
	leal	rva(pgtable + 0x1000)(%ebx), %edi
	leal	0x1007(%edi), %eax
	movl	$4, %ecx
1:	movl	%eax, 0(%edi)
	addl	$0x1000, %eax
	addl	$8, %edi
	decl	%ecx
	jnz	1b
	leal	rva(pgtable + 0x2000)(%ebx), %edi
	movl	$0x183, %eax
	movl	$2048, %ecx
1:	movl	%eax, 0(%edi)
	addl	$0x200000, %eax
	addl	$8, %edi
	decl	%ecx
	jnz	1b
	leal	rva(pgtable)(%ebx), %eax
	movl	%eax, %cr3

	/* Enable Long mode in EFER */
	movl	$MSR_EFER, %ecx
	rdmsr
	btsl	$_EFER_LME, %eax
	wrmsr

	/* Far return into startup_64, or into startup_64_mixed_mode for 32-bit EFI */
	leal	rva(startup_64)(%ebp), %eax
	cmpb	$1, rva(efi_is64)(%ebp)
	je	1f
	leal	rva(startup_64_mixed_mode)(%ebp), %eax
1:
	pushl	$__KERNEL_CS
	pushl	%eax
	movl	$CR0_STATE, %eax
	movl	%eax, %cr0
	lret
	.size	startup_32, . - startup_32

/* Models arch/x86/kernel/verify_cpu.S (included by head_64.S): long mode present? */
	.globl	verify_cpu
	.hidden	verify_cpu
	.type	verify_cpu, @function
verify_cpu:
	movl	$0x80000001, %eax
	pushl	%ebx
	cpuid
	popl	%ebx
	xorl	%eax, %eax
	btl	$29, %edx
	jc	1f
	incl	%eax
1:	ret
	.size	verify_cpu, . - verify_cpu

	.code64
	.org	0x200
	.globl	startup_64
	.type	startup_64, @function
startup_64:
	/* 64-bit entry is 0x200 and it is ABI: from startup_32 or a 64-bit boot loader */
	cld
	cli
	xorl	%eax, %eax
	movl	%eax, %ds
	movl	%eax, %es
	movl	%eax, %ss
	movl	%eax, %fs
	movl	%eax, %gs

	/* %rbp: where the decompressed kernel goes (load address, aligned) */
	leaq	startup_32(%rip), %rbp
	movl	BP_kernel_alignment(%rsi), %eax
	decl	%eax
	addq	%rax, %rbp
	notq	%rax
	andq	%rax, %rbp
	cmpq	$LOAD_PHYSICAL_ADDR, %rbp
	jae	1f
	movq	$LOAD_PHYSICAL_ADDR, %rbp
1:
	/* %rbx: where this image is copied to, so that decompression in place is safe */
	movl	BP_init_size(%rsi), %ebx
	subl	$rva(_end), %ebx
	addq	%rbp, %rbx
	leaq	rva(boot_stack_end)(%rbx), %rsp

	leaq	gdt64(%rip), %rax
	addq	%rax, 2(%rax)
	lgdt	(%rax)
	pushq	$__KERNEL_CS
	leaq	.Lon_kernel_cs(%rip), %rax
	pushq	%rax
	lretq
.Lon_kernel_cs:
	movq	%rsi, %r15		/* boot_params, kept across C calls */
	call	load_stage1_idt
	movq	%r15, %rdi
	leaq	rva(top_pgtable)(%rbx), %rsi
	call	configure_5level_paging
	pushq	$0
	popfq

	/* Copy the compressed kernel to the end of the buffer, backwards */
	leaq	(_bss - 8)(%rip), %rsi
	leaq	rva(_bss - 8)(%rbx), %rdi
	movl	$(_bss - startup_32), %ecx
	shrl	$3, %ecx
	std
	rep	movsq
	cld
	leaq	rva(gdt64)(%rbx), %rax
	leaq	rva(gdt)(%rbx), %rdx
	movq	%rdx, 2(%rax)
	lgdt	(%rax)

	/* Jump to the relocated copy */
	leaq	rva(.Lrelocated)(%rbx), %rax
	jmp	*%rax
	.size	startup_64, . - startup_64

	.text
.Lrelocated:
	/* Clear BSS (the stack is empty) */
	xorl	%eax, %eax
	leaq	_bss(%rip), %rdi
	leaq	_ebss(%rip), %rcx
	subq	%rdi, %rcx
	shrq	$3, %rcx
	rep	stosq

	/* The pre-5.10 GOT fixup: add the load offset to every GOT entry */
	leaq	startup_32(%rip), %rax
	call	adjust_got

	call	load_stage2_idt

	/* extract_kernel(boot_params, output) returns the kernel entry point in %rax */
	movq	%r15, %rdi
	movq	%rbp, %rsi
	call	extract_kernel

	/* Jump to the decompressed kernel (its startup_64), boot_params in %rsi */
	movq	%r15, %rsi
	jmp	*%rax

/* Models the 5.9 adjust_got: %rax = offset to add to each entry of [_got, _egot) */
	.type	adjust_got, @function
adjust_got:
	leaq	_got(%rip), %rdx
	leaq	_egot(%rip), %rcx
1:	cmpq	%rcx, %rdx
	jae	2f
	addq	%rax, (%rdx)
	addq	$8, %rdx
	jmp	1b
2:	ret
	.size	adjust_got, . - adjust_got

	.code32
	.type	.Lno_longmode, @function
.Lno_longmode:
1:	hlt
	jmp	1b

	.data
	.balign	8
	.type	gdt64, @object
gdt64:
	.word	gdt_end - gdt - 1
	.quad	gdt - gdt64
	.size	gdt64, . - gdt64
	.balign	8
	.type	gdt, @object
gdt:
	.word	gdt_end - gdt - 1
	.long	0
	.word	0
	.quad	0x00cf9a000000ffff	/* __KERNEL32_CS */
	.quad	0x00af9a000000ffff	/* __KERNEL_CS */
	.quad	0x00cf92000000ffff	/* __KERNEL_DS */
gdt_end:
	.size	gdt, . - gdt

	.bss
	.balign	4
boot_stack:
	.fill	0x1000, 1, 0
boot_stack_end:

	.section ".pgtable", "aw", @nobits
	.balign	4096
pgtable:
	.fill	BOOT_PGT_SIZE, 1, 0
top_pgtable:
	.fill	PAGE_SIZE, 1, 0
