/* Models arch/x86/include/asm/jump_label.h + include/linux/jump_label.h (6.1): static keys. */
#ifndef SAMPLE_JUMP_LABEL_H
#define SAMPLE_JUMP_LABEL_H

#include <stdbool.h>
#include "compiler.h"

struct static_key {
	int enabled;
};

struct static_key_false {
	struct static_key key;
};

#define DEFINE_STATIC_KEY_FALSE(name)	struct static_key_false name = { .key = { 0 } }

/*
 * struct jump_entry (16 bytes, offsets self-relative): s32 code; s32 target; long key.
 * The site is a 5-byte nop; patching turns it into a jmp to l_yes.
 */
static __always_inline bool arch_static_branch(struct static_key * const key, const bool branch)
{
	asm goto("1:"
		 ".byte 0x0f,0x1f,0x44,0x00,0x00\n\t"
		 ".pushsection __jump_table, \"aw\"\n\t"
		 ".balign 8\n\t"
		 ".long 1b - ., %l[l_yes] - .\n\t"
		 ".quad %c0 + %c1 - .\n\t"
		 ".popsection\n\t"
		 : : "i" (key), "i" (branch) : : l_yes);
	return false;
l_yes:
	return true;
}

#define static_branch_unlikely(x)	__builtin_expect(arch_static_branch(&(x)->key, false), 0)

#endif
