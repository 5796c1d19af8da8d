/* Models arch/x86/include/asm/tlbflush.h: cr4_init_shadow() is always inlined (no call edge). */
#ifndef SAMPLE_TLBFLUSH_H
#define SAMPLE_TLBFLUSH_H

#include "compiler.h"

struct tlb_state {
	unsigned long cr4;
};

extern struct tlb_state cpu_tlbstate;

static __always_inline void cr4_init_shadow(void)
{
	unsigned long cr4;

	asm volatile("mov %%cr4,%0" : "=r" (cr4));
	cpu_tlbstate.cr4 = cr4;
}

#endif
