/* Models arch/x86/kernel/head64.c clear_bss + arch/x86/kernel/idt.c: early init shared by native and Xen PV. */
#include "compiler.h"
#include "setup.h"
#include "tlbflush.h"

struct desc_ptr {
	unsigned short size;
	unsigned long address;
} __attribute__((__packed__));

extern char __bss_start[], __bss_stop[];
extern const char early_idt_handler_array[];

struct tlb_state cpu_tlbstate;
unsigned long idt_table[32];
volatile unsigned long bss_cleared;

noinline __init void clear_bss(void)
{
	void *dst = __bss_start;
	unsigned long len = __bss_stop - __bss_start;

	asm volatile("rep stosb" : "+D" (dst), "+c" (len) : "a" (0) : "memory");
	bss_cleared = 1;
}

noinline __init void idt_setup_early_handler(void)
{
	struct desc_ptr idt_descr;

	/* Address taken only: early_idt_handler_array is not called here. */
	idt_table[0] = (unsigned long)early_idt_handler_array;
	idt_descr.size = sizeof(idt_table) - 1;
	idt_descr.address = (unsigned long)idt_table;
	asm volatile("lidt %0" : : "m" (idt_descr) : "memory");
}
