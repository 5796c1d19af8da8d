/* Models arch/x86/boot/compressed/idt_64.c and pgtable_64.c: the native path's set-up that
 * the EFI stub replaces with its own (efi_setup_5level_paging). */
#include "boot.h"

static struct { unsigned short limit; unsigned long base; } __attribute__((packed)) idt_desc;

void load_stage1_idt(void)
{
	asm volatile("lidt %0" : : "m"(idt_desc));
}

void load_stage2_idt(void)
{
	asm volatile("lidt %0" : : "m"(idt_desc));
}

void configure_5level_paging(struct boot_params *bp, void *pgtable)
{
	(void)bp;
	(void)pgtable;
}
