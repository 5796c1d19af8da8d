/* Models arch/x86/platform/pvh/head.S: the 32-bit PVH entry pvh_start_xen and its PHYS32 note. */

#define __START_KERNEL_map	0xffffffff80000000
#define _pa(x)			((x) - __START_KERNEL_map)

#define PVH_CS_SEL		0x10	/* 64-bit code segment */
#define PVH_DS_SEL		0x18	/* flat data segment */

	.section .head.text, "ax"
	.code32

/* SYM_CODE_START_LOCAL(pvh_start_xen): NOTYPE, sized, not global. */
pvh_start_xen:
	cld
	lgdt	(_pa(gdt))
	mov	$PVH_DS_SEL, %eax
	mov	%eax, %ds
	mov	%eax, %es
	mov	%eax, %ss
	mov	$_pa(init_stack_end), %esp

	/* Enable PAE mode. */
	mov	%cr4, %eax
	orl	$0x20, %eax
	mov	%eax, %cr4

	/* Enable Long mode: EFER.LME. */
	mov	$0xc0000080, %ecx
	rdmsr
	btsl	$8, %eax
	wrmsr

	/* Enable pre-constructed page tables. */
	mov	$_pa(pvh_init_top_pgt), %eax
	mov	%eax, %cr3
	mov	$0x80000001, %eax	/* PG | PE */
	mov	%eax, %cr0

	/* Jump to 64-bit mode, at the PHYSICAL address of 1f. */
	ljmp	$PVH_CS_SEL, $_pa(1f)

	.code64
1:
	movabsq	$xen_prepare_pvh, %rax
	call	*%rax

	/* startup_64 expects boot_params in %rsi; jump to its PHYSICAL address. */
	xorl	%esi, %esi
	mov	$_pa(startup_64), %rax
	jmp	*%rax
	.type pvh_start_xen, @notype
	.size pvh_start_xen, .-pvh_start_xen

	.section .data, "aw"
	.balign 8
gdt:
	.word	gdt_end - gdt_start - 1
	.long	_pa(gdt_start)
	.word	0
gdt_start:
	.quad	0x0000000000000000	/* NULL descriptor */
	.quad	0x00cf9a000000ffff	/* 0x08: 32-bit code (unused) */
	.quad	0x00af9a000000ffff	/* 0x10: PVH_CS_SEL, 64-bit code */
	.quad	0x00cf92000000ffff	/* 0x18: PVH_DS_SEL, data */
gdt_end:

	.balign 4096
pvh_init_top_pgt:
	.fill	512, 8, 0
	.type pvh_init_top_pgt, @object
	.size pvh_init_top_pgt, .-pvh_init_top_pgt

/* ELFNOTE(Xen, XEN_ELFNOTE_PHYS32_ENTRY, .long _pa(pvh_start_xen)) */
	.pushsection .note.Xen, "a", @note
	.balign 4
	.long	2f - 1f
	.long	4f - 3f
	.long	18			/* XEN_ELFNOTE_PHYS32_ENTRY */
1:	.asciz	"Xen"
2:	.balign 4
3:	.long	_pa(pvh_start_xen)
4:	.balign 4
	.popsection

	.section .note.GNU-stack, "", @progbits
