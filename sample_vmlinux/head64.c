/* Models arch/x86/kernel/head64.c: early C code of the native 64-bit boot path. */
#include "compiler.h"
#include "setup.h"
#include "tlbflush.h"

volatile unsigned long early_text_base;
volatile unsigned long phys_base;
volatile unsigned long boot_params_ptr;
volatile unsigned long ucode_loaded;
volatile unsigned long reservations_done;

/* .head.text: runs from the identity mapping, called from startup_64. */
noinline __head void startup_64_setup_env(void *text)
{
	early_text_base = (unsigned long)text;
}

noinline __head unsigned long __startup_64(void)
{
	phys_base = early_text_base - 0x1000000UL;
	return phys_base;
}

static noinline __init void copy_bootdata(void *real_mode_data)
{
	boot_params_ptr = (unsigned long)real_mode_data;
}

/* Native only (models arch/x86/kernel/cpu/microcode/core.c). */
noinline __init void load_ucode_bsp(void)
{
	ucode_loaded = 1;
}

/* Reached from common_startup_64 through initial_code + lretq. */
noinline __init __noreturn void x86_64_start_kernel(void *real_mode_data)
{
	cr4_init_shadow();
	clear_bss();
	kasan_early_init();
	idt_setup_early_handler();
	copy_bootdata(real_mode_data);
	load_ucode_bsp();
	early_cpu_init();
	x86_64_start_reservations(real_mode_data);
}

/* Convergence point of the native and Xen PV paths. */
noinline __init __noreturn void x86_64_start_reservations(void *real_mode_data)
{
	reservations_done = (unsigned long)real_mode_data | 1;
	start_kernel();
}
