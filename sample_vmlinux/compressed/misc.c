/* Models arch/x86/boot/compressed/misc.c: extract_kernel (called by startup_64's relocated
 * code) and decompress_kernel (shared with the EFI stub). "Decompression" copies the
 * payload; the entry offset is that of startup_64 in the decompressed vmlinux (0). */
#include "boot.h"

struct boot_params *boot_params_ptr;

void __noreturn error(char *m)
{
	(void)m;
	for (;;)
		asm volatile("hlt");
}

static noinline unsigned long parse_elf(void *output)
{
	(void)output;
	return 0;	/* e_entry - LOAD_PHYSICAL_ADDR: startup_64 starts the kernel image */
}

unsigned long decompress_kernel(unsigned char *outbuf, unsigned long virt_addr,
				void (*error)(char *x))
{
	(void)virt_addr;
	if (!input_len)
		error("no payload");
	memcpy(outbuf, input_data, input_len);	/* models __decompress() */
	return parse_elf(outbuf);
}

asmlinkage void *extract_kernel(void *rmode, unsigned char *output)
{
	unsigned long entry_offset;

	boot_params_ptr = rmode;
	if ((unsigned long)output & 0x1fffff)
		error("Destination physical address inappropriately aligned");
	entry_offset = decompress_kernel(output, LOAD_PHYSICAL_ADDR, error);
	return output + entry_offset;
}
