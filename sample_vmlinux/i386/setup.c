/* Models arch/x86/kernel/idt.c (early IDT), mm/extable.c and the microcode loader. */
#include "setup.h"

struct boot_params boot_params;

struct gate_desc { unsigned short lo, seg; unsigned char res, type; unsigned short hi; };
struct gate_desc idt_table[32];
extern const char early_idt_handler_array[2][9];

/* Stores the handlers' addresses into the IDT: the CPU enters them on an early fault. */
noinline void __init idt_setup_early_handler(void)
{
	for (int i = 0; i < 2; i++) {
		unsigned long addr = (unsigned long)early_idt_handler_array[i];

		idt_table[i].lo = addr & 0xffff;
		idt_table[i].seg = 0x60;
		idt_table[i].type = 0x8e;
		idt_table[i].hi = addr >> 16;
	}
	asm volatile("lidt %0" : : "m"(idt_table));
}

int early_faults;

asmlinkage noinline void early_fixup_exception(void *regs, int trapnr)
{
	(void)regs;
	early_faults += trapnr;
}

/* arch/x86/kernel/cpu/microcode: only the APs run it (startup_32_smp before .Ldefault_entry). */
noinline void load_ucode_ap(void)
{
	unsigned int eax = 1, ebx, ecx = 0, edx;

	asm volatile("cpuid" : "+a"(eax), "=b"(ebx), "+c"(ecx), "=d"(edx));
}
