/* Models the constants and types the compressed stage shares (asm/boot.h, bootparam.h,
 * efi.h, misc.h), cut down to what this model uses. */
#ifndef SAMPLE_BOOT_H
#define SAMPLE_BOOT_H

#define __KERNEL_CS		0x10
#define __KERNEL_DS		0x18
#define LOAD_PHYSICAL_ADDR	0x1000000
#define PAGE_SIZE		0x1000
#define PARAM_SIZE		0x1000	/* sizeof(struct boot_params) */
#define BP_kernel_alignment	0x230	/* offsetof(struct boot_params, hdr.kernel_alignment) */
#define BP_init_size		0x260	/* offsetof(struct boot_params, hdr.init_size) */
#define X86_CR0_PE		0x00000001
#define X86_CR0_PG		0x80000000
#define X86_CR0_PG_BIT		31
#define X86_CR4_PAE		0x00000020
#define MSR_EFER		0xc0000080
#define _EFER_LME		8
#define CR0_STATE		(X86_CR0_PE | X86_CR0_PG)
#define BOOT_PGT_SIZE		(6 * PAGE_SIZE)	/* PML4 + PDPT + 4 PDs: 4 GiB identity map */

#ifndef __ASSEMBLER__
#define noinline	__attribute__((__noipa__))
#define __noreturn	__attribute__((__noreturn__))
#define __efiapi	__attribute__((__ms_abi__))
#define asmlinkage

#define ULONG_MAX			(~0UL)
#define EFI_SUCCESS			0UL
#define EFI_LOAD_ERROR			(1UL | (1UL << 63))
#define EFI_INVALID_PARAMETER		(2UL | (1UL << 63))
#define EFI_SYSTEM_TABLE_SIGNATURE	0x5453595320494249ULL	/* "IBI SYST" */

typedef unsigned long efi_status_t;
typedef void *efi_handle_t;
typedef struct { unsigned long long signature; unsigned int revision; } efi_table_hdr_t;
typedef struct { efi_table_hdr_t hdr; } efi_system_table_t;

struct setup_header {		/* the fields this model touches, at their real offsets */
	unsigned char pad0[0x1f2 - 0x1f1];
	unsigned short root_flags;
	unsigned char pad1[0x1fa - 0x1f4];
	unsigned short vid_mode;
	unsigned char pad2[0x210 - 0x1fc];
	unsigned char type_of_loader;
	unsigned char loadflags;
	unsigned char pad3[0x228 - 0x212];
	unsigned int cmd_line_ptr;
} __attribute__((packed));

struct boot_params {
	unsigned char pad[0x1f1];
	struct setup_header hdr;
	unsigned char rest[PARAM_SIZE - 0x1f1 - sizeof(struct setup_header)];
};

extern char _bss[], _ebss[], _end[];
extern unsigned char input_data[];
extern const unsigned int input_len, output_len;
extern unsigned char efi_is64;
extern struct boot_params *boot_params_ptr;

void *memset(void *s, int c, unsigned long n);
void *memcpy(void *dst, const void *src, unsigned long n);
void __noreturn error(char *m);
unsigned long decompress_kernel(unsigned char *outbuf, unsigned long virt_addr,
				void (*error)(char *x));
asmlinkage void *extract_kernel(void *rmode, unsigned char *output);
void load_stage1_idt(void);
void load_stage2_idt(void);
void configure_5level_paging(struct boot_params *bp, void *pgtable);
#endif

#endif
