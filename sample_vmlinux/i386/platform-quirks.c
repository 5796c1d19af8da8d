/* Models arch/x86/platform/intel-mid and ce4100 early setup, and
 * arch/x86/kernel/platform-quirks.c, whose switch is written here with a call per case so
 * that gcc -O2 -m32 compiles it to a jump table (`jmp *.L(,%eax,4)`): 32-bit absolute
 * entries, as in i386 kernels built without retpolines (no -fno-jump-tables). */
#include "setup.h"

struct x86_legacy_features {
	int i8042, rtc, pnpbios, reserve_bios_regions;
};

struct x86_legacy_features x86_legacy;

static noinline void __init quirk_pc(void) { x86_legacy.reserve_bios_regions = 1; }
static noinline void __init quirk_lguest(void) { x86_legacy.rtc = 0; }
static noinline void __init quirk_xen(void) { x86_legacy.pnpbios = 0; x86_legacy.rtc = 0; }
static noinline void __init quirk_intel_mid(void) { x86_legacy.i8042 = 2; }
static noinline void __init quirk_ce4100(void) { x86_legacy.i8042 = 2; x86_legacy.rtc = 0; }

noinline void __init x86_early_init_platform_quirks(void)
{
	x86_legacy.i8042 = 1;
	x86_legacy.rtc = 1;
	switch (boot_params.hdr.hardware_subarch) {
	case X86_SUBARCH_PC:
		quirk_pc();
		break;
	case X86_SUBARCH_LGUEST:
		quirk_lguest();
		break;
	case X86_SUBARCH_XEN:
		quirk_xen();
		break;
	case X86_SUBARCH_INTEL_MID:
		quirk_intel_mid();
		break;
	case X86_SUBARCH_CE4100:
		quirk_ce4100();
		break;
	}
	x86_legacy.pnpbios = x86_legacy.rtc;
}

noinline void __init x86_intel_mid_early_setup(void) { x86_legacy.rtc = 0; }
noinline void __init x86_ce4100_early_setup(void) { x86_legacy.pnpbios = 0; }
