/* Models arch/x86/platform/pvh/head.S for CONFIG_X86_32 (Linux 6.1): the PVH entry builds
 * the early page tables, calls xen_prepare_pvh with paging on, turns paging off again and
 * far-jumps to the PHYSICAL address of startup_32 ("startup_32 doesn't expect paging"). */

#define __START_KERNEL_map	0xc0000000	/* = __PAGE_OFFSET on i386 */
#define _pa(x)			((x) - __START_KERNEL_map)

#define PVH_CS_SEL		0x08
#define PVH_DS_SEL		0x10
#define X86_CR0_PE		0x00000001
#define X86_CR0_PG		0x80000000
#define X86_CR4_PAE		0x00000020

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

	/* Stash hvm_start_info. */
	mov	$_pa(pvh_start_info), %edi
	mov	%ebx, %esi
	mov	_pa(pvh_start_info_sz), %ecx
	shr	$2, %ecx
	rep
	movsl

	mov	$_pa(early_stack_end), %esp

	call	mk_early_pgtbl_32

	mov	$_pa(initial_page_table), %eax
	mov	%eax, %cr3

	mov	%cr0, %eax
	or	$(X86_CR0_PG | X86_CR0_PE), %eax
	mov	%eax, %cr0

	ljmp	$PVH_CS_SEL, $1f
1:
	call	xen_prepare_pvh
	mov	$_pa(pvh_bootparams), %esi

	/* startup_32 doesn't expect paging and PAE to be on. */
	ljmp	$PVH_CS_SEL, $_pa(2f)
2:
	mov	%cr0, %eax
	and	$~X86_CR0_PG, %eax
	mov	%eax, %cr0
	mov	%cr4, %eax
	and	$~X86_CR4_PAE, %eax
	mov	%eax, %cr4

	ljmp	$PVH_CS_SEL, $_pa(startup_32)
	.size pvh_start_xen, .-pvh_start_xen

	.section .init.data, "aw"
	.balign 8
gdt:
	.word	gdt_end - gdt_start - 1
	.long	_pa(gdt_start)
	.word	0
gdt_start:
	.quad	0x0000000000000000	/* NULL descriptor */
	.quad	0x00cf9a000000ffff	/* 0x08: PVH_CS_SEL, 32-bit code */
	.quad	0x00cf92000000ffff	/* 0x10: PVH_DS_SEL, data */
gdt_end:

	.balign 16
early_stack:
	.fill	256, 1, 0
early_stack_end:

/* ELFNOTE(Xen, XEN_ELFNOTE_PHYS32_ENTRY, _ASM_PTR (pvh_start_xen - __START_KERNEL_map)) */
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
