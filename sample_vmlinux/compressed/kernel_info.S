/* Models arch/x86/boot/compressed/kernel_info.S: the header's kernel_info_offset points here. */
	.section ".rodata.kernel_info", "a"
	.globl	kernel_info
kernel_info:
	.ascii	"LToP"				/* header, Linux top (structure) */
	.long	kernel_info_var_len_data - kernel_info
	.long	kernel_info_end - kernel_info
	.long	0x7fffffff			/* setup_type_max */
kernel_info_var_len_data:
kernel_info_end:
