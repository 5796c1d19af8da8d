/* Models arch/x86/xen/enlighten_pvh.c: xen_prepare_pvh, called from pvh_start_xen through %rax. */
#include "compiler.h"
#include "setup.h"

volatile unsigned long pvh_start_info;
volatile unsigned long pvh_prepared;

noinline void pvh_init_start_info(void)
{
	pvh_start_info = 0x1234;
}

noinline __init void xen_prepare_pvh(void)
{
	pvh_init_start_info();
	pvh_prepared = 1;
}
