/* Models kernel/printk/printk.c register_console() and arch/x86/kernel/cpu/hypervisor.c:
 * structs of function pointers handed on by address (all init code and data placed last,
 * so the rest of the sample keeps its addresses). setup_arch registers early_con (the
 * registrations resolver: early_con_write is reached through the registering call) and
 * passes the hypervisors[] array, whose structs hold the detect callbacks (the
 * data-objects resolver, two levels deep). */
#include "compiler.h"
#include "setup.h"

struct console {
	void (*write)(const char *s);
};

struct hypervisor_x86 {
	unsigned long (*detect)(void);
};

volatile unsigned long console_chars;
volatile unsigned long hypervisor_found;
struct console *console_drivers;

noinline __init void early_con_write(const char *s)
{
	console_chars += (unsigned long)s;
}

struct console early_con = { .write = early_con_write };

noinline __init void register_console(struct console *con)
{
	console_drivers = con;
}

noinline __init unsigned long detect_sample_hypervisor(void)
{
	return 1;
}

/* Not const: .data, after every other object's (the sample's addresses stay put). */
struct hypervisor_x86 sample_hypervisor = { .detect = detect_sample_hypervisor };
struct hypervisor_x86 *hypervisors[] = { &sample_hypervisor };

noinline __init void init_hypervisor_platform(struct hypervisor_x86 **list, unsigned long count)
{
	for (unsigned long i = 0; i < count; i++)
		hypervisor_found |= list[i]->detect();
}
