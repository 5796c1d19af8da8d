/* Models arch/x86/xen/enlighten_pv.c: xen_start_kernel overrides pv_ops, then joins the native path. */
#include "compiler.h"
#include "setup.h"
#include "paravirt.h"
#include "static_call.h"

volatile unsigned long xen_cr4_shadow;
volatile unsigned long xen_idt_base;
volatile unsigned long xen_features_ready;

noinline void xen_write_cr4(unsigned long cr4)
{
	xen_cr4_shadow = cr4 & ~0x80UL;		/* Xen PV: no CR4.PGE */
}

noinline void xen_load_idt(const void *dtr)
{
	xen_idt_base = (unsigned long)dtr;
}

noinline __init void xen_setup_features(void)
{
	xen_features_ready = 1;
}

/* Reached from startup_xen by a tail jump. */
noinline __init void xen_start_kernel(void)
{
	pv_ops.cpu.write_cr4 = xen_write_cr4;
	pv_ops.cpu.load_idt = xen_load_idt;

	static_call_update(early_hook, xen_early_hook);

	xen_setup_features();
	if (unlikely(!xen_features_ready))
		panic("xen: no features");
	clear_bss();
	idt_setup_early_handler();
	static_call(early_hook)();
	x86_64_start_reservations(NULL);
}

/* Replaces default_early_hook on Xen PV: xen_start_kernel retargets the static call. */
noinline void xen_early_hook(void)
{
	xen_features_ready |= 2;
}
