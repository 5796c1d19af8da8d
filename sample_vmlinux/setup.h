/* Models the prototypes shared by arch/x86/kernel/{head64.c,setup.c,idt.c} and init/main.c. */
#ifndef SAMPLE_SETUP_H
#define SAMPLE_SETUP_H

#include "compiler.h"

/* head64.c */
void startup_64_setup_env(void *text);
unsigned long __startup_64(void);
__noreturn void x86_64_start_kernel(void *real_mode_data);
__noreturn void x86_64_start_reservations(void *real_mode_data);
void load_ucode_bsp(void);

/* kasan_init.c */
void kasan_early_init(void);

/* setup.c */
void clear_bss(void);
void idt_setup_early_handler(void);

/* main.c */
__noreturn void start_kernel(void);
void setup_arch(void);
void run_init_process(void (*fn)(void));
__noreturn void rest_init(void);

/* console.c */
struct console;
struct hypervisor_x86;
extern struct console early_con;
extern struct hypervisor_x86 *hypervisors[];
void register_console(struct console *con);
void init_hypervisor_platform(struct hypervisor_x86 **list, unsigned long count);

/* cpu_common.c */
void early_cpu_init(void);

/* panic.c */
__noreturn void panic(const char *fmt);

/* paravirt.c */
void native_irq_disable(void);

/* enlighten_pv.c / enlighten_pvh.c */
void xen_start_kernel(void);
void xen_setup_features(void);
void xen_prepare_pvh(void);
void pvh_init_start_info(void);

#endif
