/* Models arch/x86/kernel/paravirt.c: the native pv_ops handlers and the statically initialised table. */
#include "compiler.h"
#include "setup.h"
#include "paravirt.h"

volatile unsigned long irq_disable_count;

noinline void native_write_cr4(unsigned long val)
{
	asm volatile("mov %0,%%cr4" : : "r" (val) : "memory");
}

noinline unsigned long native_read_cr0(void)
{
	unsigned long val;

	asm volatile("mov %%cr0,%0" : "=r" (val));
	return val;
}

noinline void native_load_idt(const void *dtr)
{
	asm volatile("lidt (%0)" : : "r" (dtr) : "memory");
}

/* Models arch/x86/include/asm/irqflags.h native_irq_disable, placed in .noinstr.text. */
noinline noinstr void native_irq_disable(void)
{
	asm volatile("cli" : : : "memory");
	irq_disable_count++;
}

struct paravirt_patch_template pv_ops = {
	.cpu = {
		.write_cr4	= native_write_cr4,
		.read_cr0	= native_read_cr0,
		.load_idt	= native_load_idt,
	},
};
