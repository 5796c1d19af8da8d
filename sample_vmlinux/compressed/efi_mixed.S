/* Models arch/x86/boot/compressed/efi_mixed.S (6.1.192): the 32-bit EFI entries of mixed
 * mode. efi32_stub_entry (handover, 32-bit) and efi32_pe_entry (.compat PE entry) save the
 * firmware's state in efi32_entry and enter startup_32 with efi_is64 = 0; startup_32 then
 * far-returns into startup_64_mixed_mode, which calls the C stub. efi64_stub_entry sits at
 * efi32_stub_entry + 0x200, as the handover protocol requires. */
#include "boot.h"

	.hidden	_bss
	.hidden	_ebss
	.hidden	_end
	.hidden	efi_stub_entry
	.hidden	efi_pe_entry
	.hidden	efi_handover_entry

	.code64
	.text
	.globl	startup_64_mixed_mode
	.type	startup_64_mixed_mode, @function
startup_64_mixed_mode:
	lea	efi32_boot_args(%rip), %rdx
	mov	0(%rdx), %edi
	mov	4(%rdx), %esi
	movl	efi32_boot_sp(%rip), %esp	/* the firmware's stack */
	andl	$~7, %esp
	mov	8(%rdx), %edx		/* saved boot_params pointer: handover */
	test	%edx, %edx
	jnz	efi_stub_entry
	sub	$40, %rsp		/* MS ABI shadow space + return address slot */
	mov	%rdi, %rcx
	mov	%rsi, %rdx
	jmp	efi_pe_entry
	.size	startup_64_mixed_mode, . - startup_64_mixed_mode

	.code32
	.globl	efi32_stub_entry
	.type	efi32_stub_entry, @function
efi32_stub_entry:
	call	1f
1:	popl	%ecx
	leal	(efi32_boot_args - 1b)(%ecx), %ebx
	/* Clear BSS */
	xorl	%eax, %eax
	leal	(_bss - 1b)(%ecx), %edi
	leal	(_ebss - 1b)(%ecx), %ecx
	subl	%edi, %ecx
	shrl	$2, %ecx
	cld
	rep	stosl
	add	$0x4, %esp		/* discard the return address */
	popl	%ecx			/* handle */
	popl	%edx			/* system table */
	popl	%esi			/* boot_params */
	movl	%esi, 8(%ebx)
	jmp	efi32_entry
	.size	efi32_stub_entry, . - efi32_stub_entry

	.type	efi32_entry, @function
efi32_entry:
	call	1f
1:	pop	%ebx
	sgdtl	(efi32_boot_gdt - 1b)(%ebx)
	movw	%cs, (efi32_boot_cs - 1b)(%ebx)
	movw	%ds, (efi32_boot_ds - 1b)(%ebx)
	sidtl	(efi32_boot_idt - 1b)(%ebx)
	movl	%esp, (efi32_boot_sp - 1b)(%ebx)
	leal	(efi32_boot_args - 1b)(%ebx), %ebx
	movl	%ecx, 0(%ebx)
	movl	%edx, 4(%ebx)
	movb	$0x0, 12(%ebx)		/* efi_is64 = 0 */
	/* A minimal boot_params for startup_32 */
	subl	$PARAM_SIZE, %esp
	movl	%esp, %esi
	movl	$PAGE_SIZE, BP_kernel_alignment(%esi)
	movl	$_end - 1b, BP_init_size(%esi)
	subl	$startup_32 - 1b, BP_init_size(%esi)
	/* Disable paging */
	movl	%cr0, %eax
	btrl	$X86_CR0_PG_BIT, %eax
	movl	%eax, %cr0
	jmp	startup_32
	.size	efi32_entry, . - efi32_entry

	.globl	efi32_pe_entry
	.type	efi32_pe_entry, @function
efi32_pe_entry:
	pushl	%ebp
	movl	%esp, %ebp
	pushl	%ebx
	pushl	%edi
	call	verify_cpu		/* long mode supported? */
	testl	%eax, %eax
	movl	$0x80000003, %eax	/* EFI_UNSUPPORTED */
	jnz	2f
	movl	8(%ebp), %ecx		/* image_handle */
	movl	12(%ebp), %edx		/* sys_table */
	jmp	efi32_entry
2:	popl	%edi
	popl	%ebx
	leave
	ret
	.size	efi32_pe_entry, . - efi32_pe_entry

	.org	efi32_stub_entry + 0x200
	.code64
	.globl	efi64_stub_entry
	.type	efi64_stub_entry, @function
efi64_stub_entry:
	jmp	efi_handover_entry
	.size	efi64_stub_entry, . - efi64_stub_entry

	.data
	.balign	8
efi32_boot_gdt:	.word 0
		.quad 0
efi32_boot_idt:	.word 0
		.quad 0
efi32_boot_cs:	.word 0
efi32_boot_ds:	.word 0
efi32_boot_sp:	.long 0
efi32_boot_args: .long 0, 0, 0
	.globl	efi_is64
	.type	efi_is64, @object
efi_is64:	.byte 1
	.size	efi_is64, 1
