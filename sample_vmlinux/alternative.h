/* Models arch/x86/include/asm/alternative.h (6.1): ALTERNATIVE() and its .altinstructions entry. */
#ifndef SAMPLE_ALTERNATIVE_H
#define SAMPLE_ALTERNATIVE_H

#define X86_FEATURE_XMM2	(0*32+26)

#define __stringify_1(x)	#x
#define __stringify(x)		__stringify_1(x)

/*
 * struct alt_instr (12 bytes, offsets self-relative):
 *	s32 instr_offset; s32 repl_offset; u16 cpuid; u8 instrlen; u8 replacementlen;
 * The original is padded with 0x90 nops to the replacement's length.
 */
#define alt_slen		"662b-661b"
#define alt_total_slen		"663b-661b"
#define alt_rlen		"6651f-6641f"

#define ALTERNATIVE(oldinstr, newinstr, feature)				\
	"661:\n\t" oldinstr "\n662:\n"						\
	".skip -(((" alt_rlen ")-(" alt_slen ")) > 0) * "			\
		"((" alt_rlen ")-(" alt_slen ")),0x90\n"			\
	"663:\n"								\
	".pushsection .altinstructions,\"a\"\n"					\
	" .long 661b - .\n"							\
	" .long 6641f - .\n"							\
	" .word " __stringify(feature) "\n"					\
	" .byte " alt_total_slen "\n"						\
	" .byte " alt_rlen "\n"							\
	".popsection\n"								\
	".pushsection .altinstr_replacement, \"ax\"\n"				\
	"6641:\n\t" newinstr "\n6651:\n"					\
	".popsection\n"

/* alternative_call() without an old function: nothing runs unless the CPU has the feature. */
#define alternative_call_only(newfunc, feature)					\
	asm volatile(ALTERNATIVE("", "call %P[new]", feature)	\
		     : : [new] "i" (newfunc)					\
		     : "memory", "cc", "rax", "rcx", "rdx", "rsi", "rdi",	\
		       "r8", "r9", "r10", "r11")

#endif
