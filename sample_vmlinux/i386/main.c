/* Models init/main.c: the kernel proper starts here; the boot paths end. */
#include "setup.h"

char boot_command_line[64] __initdata;

noinline void __init setup_arch(void)
{
	boot_command_line[0] = 0;
}

noinline void rest_init(void)
{
	for (;;)
		asm volatile("hlt");
}

noinline void __init start_kernel(void)
{
	setup_arch();
	rest_init();
}
