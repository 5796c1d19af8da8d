/* Models drivers/firmware/efi/libstub/x86-stub.c (6.1.192): the EFI stub decompresses the
 * kernel itself and jumps straight into it. efi_pe_entry (the PE/COFF entry) builds a
 * boot_params and calls efi_stub_entry; efi_handover_entry (efi64_stub_entry's target)
 * clears the BSS first. efi_stub_entry -> efi_decompress_kernel -> decompress_kernel, then
 * enter_kernel: `jmp *%rax` into the decompressed kernel's startup_64. */
#include "boot.h"

static efi_system_table_t *efi_system_table;
static struct boot_params efi_boot_params;	/* models efi_allocate_pages(PARAM_SIZE) */

static noinline __noreturn void efi_exit(efi_handle_t handle, efi_status_t status)
{
	(void)handle;
	(void)status;
	for (;;)
		asm volatile("hlt");
}

static noinline int efi_is_native(void)
{
	return efi_is64;
}

static noinline efi_status_t efi_setup_5level_paging(void)
{
	return EFI_SUCCESS;
}

static noinline efi_status_t exit_boot(struct boot_params *bp, efi_handle_t handle)
{
	(void)bp;
	(void)handle;
	return EFI_SUCCESS;
}

static noinline efi_status_t efi_decompress_kernel(unsigned long *kernel_entry)
{
	unsigned long addr = LOAD_PHYSICAL_ADDR;	/* models efi_random_alloc() */
	unsigned long entry;

	entry = decompress_kernel((unsigned char *)addr, LOAD_PHYSICAL_ADDR, error);
	if (entry == ULONG_MAX)
		return EFI_LOAD_ERROR;
	*kernel_entry = addr + entry;
	return EFI_SUCCESS;
}

static noinline __noreturn void enter_kernel(unsigned long kernel_addr,
					     struct boot_params *boot_params)
{
	/* enter the decompressed kernel with the boot_params pointer in RSI */
	asm volatile("jmp *%0" : : "r"(kernel_addr), "S"(boot_params));
	__builtin_unreachable();
}

void __noreturn efi_stub_entry(efi_handle_t handle, efi_system_table_t *sys_table_arg,
			       struct boot_params *boot_params)
{
	unsigned long kernel_entry;
	efi_status_t status;

	boot_params_ptr = boot_params;
	efi_system_table = sys_table_arg;
	if (efi_system_table->hdr.signature != EFI_SYSTEM_TABLE_SIGNATURE)
		efi_exit(handle, EFI_INVALID_PARAMETER);
	status = efi_setup_5level_paging();
	if (status != EFI_SUCCESS)
		goto fail;
	status = efi_decompress_kernel(&kernel_entry);
	if (status != EFI_SUCCESS)
		goto fail;
	status = exit_boot(boot_params, handle);
	if (status != EFI_SUCCESS)
		goto fail;
	enter_kernel(kernel_entry, boot_params);
fail:
	efi_exit(handle, status);
}

efi_status_t __efiapi efi_pe_entry(efi_handle_t handle, efi_system_table_t *sys_table_arg)
{
	struct boot_params *boot_params = &efi_boot_params;

	if (efi_is_native())
		memset(_bss, 0, _ebss - _bss);
	efi_system_table = sys_table_arg;
	if (efi_system_table->hdr.signature != EFI_SYSTEM_TABLE_SIGNATURE)
		efi_exit(handle, EFI_INVALID_PARAMETER);
	memset(boot_params, 0, PARAM_SIZE);
	boot_params->hdr.root_flags = 1;
	boot_params->hdr.vid_mode = 0xffff;
	boot_params->hdr.type_of_loader = 0x21;
	efi_stub_entry(handle, sys_table_arg, boot_params);
}

void efi_handover_entry(efi_handle_t handle, efi_system_table_t *sys_table_arg,
			struct boot_params *boot_params)
{
	memset(_bss, 0, _ebss - _bss);
	efi_stub_entry(handle, sys_table_arg, boot_params);
}
