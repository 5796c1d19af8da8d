/* Models arch/x86/kernel/head32.c (Linux 6.1). */
#include "setup.h"

#define PAGE_OFFSET	0xc0000000UL
#define __pa(x)		((unsigned long)(x) - PAGE_OFFSET)

extern unsigned long initial_page_table[1024];
extern char _end[];

static noinline void __init i386_default_early_setup(void)
{
	/* x86_init.resources.reserve_resources = i386_reserve_resources; ... */
	asm volatile("" ::: "memory");
}

asmlinkage __visible void __init i386_start_kernel(void)
{
	/* Make sure IDT is set up before any exception happens */
	idt_setup_early_handler();

	x86_early_init_platform_quirks();

	/* Call the subarch specific early setup function */
	switch (boot_params.hdr.hardware_subarch) {
	case X86_SUBARCH_INTEL_MID:
		x86_intel_mid_early_setup();
		break;
	case X86_SUBARCH_CE4100:
		x86_ce4100_early_setup();
		break;
	default:
		i386_default_early_setup();
		break;
	}

	start_kernel();
}

/* Runs with paging off, at its physical address: touches data through __pa() only. */
void __init mk_early_pgtbl_32(void)
{
	unsigned long *pgd = (unsigned long *)__pa(initial_page_table);
	unsigned long pte = 0x63;	/* PDE_IDENT_ATTR */
	unsigned long limit = __pa(_end);
	int i = 0;

	while (pte < limit && i < 256) {
		pgd[i] = pgd[i + (PAGE_OFFSET >> 22)] = pte | 0x80;	/* 4 MiB pages */
		pte += 1UL << 22;
		i++;
	}
}
