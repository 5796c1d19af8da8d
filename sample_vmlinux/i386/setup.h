/* Prototypes shared by the sample's C files and head_32.S. */
#ifndef SAMPLE_SETUP_H
#define SAMPLE_SETUP_H

#include "compiler.h"

struct setup_header {
	unsigned int hardware_subarch;
	unsigned int cmd_line_ptr;
};

struct boot_params {
	unsigned char pad[0x23c];
	struct setup_header hdr;
};

extern struct boot_params boot_params;

/* arch/x86/include/asm/bootparam.h */
enum { X86_SUBARCH_PC, X86_SUBARCH_LGUEST, X86_SUBARCH_XEN, X86_SUBARCH_INTEL_MID,
       X86_SUBARCH_CE4100 };

void mk_early_pgtbl_32(void);
asmlinkage void i386_start_kernel(void) __noreturn;
void idt_setup_early_handler(void);
void x86_early_init_platform_quirks(void);
void x86_intel_mid_early_setup(void);
void x86_ce4100_early_setup(void);
asmlinkage void early_fixup_exception(void *regs, int trapnr);
void load_ucode_ap(void);
void xen_prepare_pvh(void);
void start_kernel(void) __noreturn;
void setup_arch(void);
void rest_init(void) __noreturn;

#endif
