/* Models arch/x86/platform/pvh/enlighten.c: xen_prepare_pvh, called by pvh_start_xen. */
#include "setup.h"

struct boot_params pvh_bootparams;
unsigned char pvh_start_info[64];
unsigned int pvh_start_info_sz = sizeof(pvh_start_info);

static noinline void __init init_pvh_bootparams(void)
{
	pvh_bootparams.hdr.hardware_subarch = X86_SUBARCH_XEN;
}

noinline void __init xen_prepare_pvh(void)
{
	init_pvh_bootparams();
}
