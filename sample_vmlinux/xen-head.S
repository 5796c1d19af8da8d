/* Models arch/x86/xen/xen-head.S: the Xen PV entry startup_xen and its ELF notes. */

	.section .init.text, "ax"
	.code64

/* SYM_CODE_START(startup_xen) */
	.globl startup_xen
startup_xen:
	cld
	leaq	init_stack_end(%rip), %rsp
	jmp	xen_start_kernel
	.type startup_xen, @notype
	.size startup_xen, .-startup_xen

/* include/linux/elfnote.h ELFNOTE(name, type, desc) */
#define ELFNOTE(name, type, desc)			\
	.pushsection .note.name, "a", @note;		\
	.balign 4;					\
	.long 2f - 1f;		/* namesz */		\
	.long 4484f - 3f;	/* descsz */		\
	.long type;					\
1:	.asciz #name;					\
2:	.balign 4;					\
3:	desc;						\
4484:	.balign 4;					\
	.popsection

#define XEN_ELFNOTE_ENTRY	1
#define XEN_ELFNOTE_GUEST_OS	6

	ELFNOTE(Xen, XEN_ELFNOTE_GUEST_OS, .asciz "linux")
	ELFNOTE(Xen, XEN_ELFNOTE_ENTRY, .quad startup_xen)

	.section .note.GNU-stack, "", @progbits
