/* Models init/main.c start_kernel + arch/x86/kernel/setup.c setup_arch: the shared tail of every boot path. */
#include "compiler.h"
#include "setup.h"
#include "paravirt.h"
#include "tlbflush.h"

/* Never assigned in this image: the call through it cannot be resolved statically. */
void (*volatile late_init_fn)(void);
volatile unsigned long arch_setup_done;
volatile unsigned long init_process_runs;
__initdata char boot_command_line[64] = "console=ttyS0";

noinline __init void setup_arch(void)
{
	pv_ops.cpu.write_cr4(cpu_tlbstate.cr4 | 0x80UL);	/* indirect call through pv_ops */
	register_console(&early_con);
	init_hypervisor_platform(hypervisors, 1);
	arch_setup_done = (unsigned long)boot_command_line;
}

noinline __init void run_init_process(void (*fn)(void))
{
	fn();						/* unresolvable indirect call */
	init_process_runs++;
}

noinline void __noreturn rest_init(void)
{
	native_irq_disable();
	for (;;)
		asm volatile("hlt");
}

noinline __init __noreturn void start_kernel(void)
{
	setup_arch();
	run_init_process(late_init_fn);
	rest_init();
}
