/* Models arch/x86/include/asm/paravirt_types.h: the pv_ops function-pointer table. */
#ifndef SAMPLE_PARAVIRT_H
#define SAMPLE_PARAVIRT_H

struct pv_cpu_ops {
	void (*write_cr4)(unsigned long);
	unsigned long (*read_cr0)(void);
	void (*load_idt)(const void *);
};

struct paravirt_patch_template {
	struct pv_cpu_ops cpu;
};

extern struct paravirt_patch_template pv_ops;

void native_write_cr4(unsigned long val);
unsigned long native_read_cr0(void);
void native_load_idt(const void *dtr);

#endif
