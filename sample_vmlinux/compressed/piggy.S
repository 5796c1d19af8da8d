/* Models the generated arch/x86/boot/compressed/piggy.S: the compressed kernel
 * (payload_offset/payload_length in the setup header) and its sizes. The model's payload
 * is a few bytes standing in for vmlinux.bin.gz. */
	.section ".rodata..compressed", "a", @progbits
	.globl	input_data, input_data_end
	.hidden	input_data
input_data:
	.ascii	"entrycheck sample: stands in for the compressed vmlinux\0"
input_data_end:

	.section ".rodata", "a", @progbits
	.globl	input_len, output_len
	.hidden	input_len
	.hidden	output_len
input_len:
	.long	input_data_end - input_data
output_len:
	.long	input_data_end - input_data
