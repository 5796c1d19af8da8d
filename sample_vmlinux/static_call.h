/* Models include/linux/static_call.h + arch/x86/include/asm/static_call.h (6.1). */
#ifndef SAMPLE_STATIC_CALL_H
#define SAMPLE_STATIC_CALL_H

struct static_call_key {
	void *func;
};

#define STATIC_CALL_KEY(name)		__SCK__##name
#define STATIC_CALL_TRAMP(name)		__SCT__##name
#define STATIC_CALL_TRAMP_STR(name)	"__SCT__" #name

/* The trampoline: `jmp func` then the "ud1 %esp,%ecx" signature, in .static_call.text. */
#define ARCH_DEFINE_STATIC_CALL_TRAMP(name, func)				\
	asm(".pushsection .static_call.text, \"ax\"\n"				\
	    ".align 4\n"							\
	    ".globl " STATIC_CALL_TRAMP_STR(name) "\n"				\
	    STATIC_CALL_TRAMP_STR(name) ":\n"					\
	    ".byte 0xe9; .long " #func " - (. + 4)\n"				\
	    ".byte 0x0f, 0xb9, 0xcc\n"						\
	    ".type " STATIC_CALL_TRAMP_STR(name) ", @function\n"		\
	    ".size " STATIC_CALL_TRAMP_STR(name) ", . - " STATIC_CALL_TRAMP_STR(name) "\n" \
	    ".popsection\n")

#define DECLARE_STATIC_CALL(name, func)						\
	extern struct static_call_key STATIC_CALL_KEY(name);			\
	extern typeof(func) STATIC_CALL_TRAMP(name)

#define DEFINE_STATIC_CALL(name, _func)						\
	DECLARE_STATIC_CALL(name, _func);					\
	struct static_call_key STATIC_CALL_KEY(name) = { .func = _func };	\
	ARCH_DEFINE_STATIC_CALL_TRAMP(name, _func)

#define static_call(name)	((typeof(STATIC_CALL_TRAMP(name)) *)(STATIC_CALL_TRAMP(name)))

void __static_call_update(struct static_call_key *key, void *tramp, void *func);

#define static_call_update(name, func)						\
	__static_call_update(&STATIC_CALL_KEY(name), STATIC_CALL_TRAMP(name), func)

/* The hook of this sample: default_early_hook, retargeted to xen_early_hook on Xen PV. */
void default_early_hook(void);
void xen_early_hook(void);
DECLARE_STATIC_CALL(early_hook, default_early_hook);

#endif
