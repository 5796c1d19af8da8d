/*
 * Models early CPU set-up (arch/x86/kernel/cpu/common.c) as a place for the kernel's
 * indirect control flow on the native boot path: an alternative, a static key, a static
 * call, a retpoline thunk call, a switch compiled to a jump table, and a panic() exit.
 * Every helper here is reached only through its mechanism.
 */
#include "compiler.h"
#include "setup.h"
#include "alternative.h"
#include "jump_label.h"
#include "static_call.h"

volatile unsigned long alt_helper_runs;
volatile unsigned long static_key_runs;
volatile unsigned long thunk_target_runs;
volatile unsigned long early_cpu_mode;
volatile unsigned long early_cpu_flags;
volatile unsigned long early_hook_runs;
volatile unsigned long dead_code_runs;
volatile unsigned long boot_cpu_level = 6;

DEFINE_STATIC_KEY_FALSE(early_debug_key);

/* Runs only where .altinstructions patches early_cpu_init's nops into a call. */
noinline void alt_only_helper(void)
{
	alt_helper_runs++;
}

/* Runs only once early_debug_key is enabled: the jump label's out-of-line block. */
noinline void static_key_only_helper(void)
{
	static_key_runs++;
}

/* Called through __x86_indirect_thunk_rax, with its address in %rax. */
noinline void thunk_target_fn(void)
{
	thunk_target_runs++;
}

noinline void jump_table_case_helper(void)
{
	early_cpu_flags |= 0x100;
}

/* After a call to panic(): never runs. */
noinline void dead_after_panic(void)
{
	dead_code_runs++;
}

noinline void default_early_hook(void)
{
	early_hook_runs++;
}

DEFINE_STATIC_CALL(early_hook, default_early_hook);

/* Dense cases: gcc -O2 compiles this switch to `jmp *table(,%rdi,8)` over .rodata. */
noinline noinstr void early_cpu_set_mode(unsigned int mode)
{
	switch (mode) {
	case 0:
		early_cpu_flags = 1;
		break;
	case 1:
		early_cpu_flags |= 2;
		break;
	case 2:
		jump_table_case_helper();
		early_cpu_flags |= 8;
		break;
	case 3:
		early_cpu_flags ^= 4;
		break;
	case 4:
		early_cpu_flags = 0;
		break;
	case 5:
		early_cpu_flags <<= 1;
		break;
	case 6:
		early_cpu_flags >>= 2;
		break;
	}
}

noinline noinstr void early_cpu_init(void)
{
	/* ALTERNATIVE("", "call alt_only_helper", X86_FEATURE_XMM2): 5 nops in place. */
	alternative_call_only(alt_only_helper, X86_FEATURE_XMM2);

	if (static_branch_unlikely(&early_debug_key))
		static_key_only_helper();

	static_call(early_hook)();

	/* What gcc -mindirect-branch=thunk-extern emits for a call through %rax. */
	asm volatile("mov $thunk_target_fn, %%rax\n\t"
		     "call __x86_indirect_thunk_rax"
		     : : : "memory", "cc", "rax", "rcx", "rdx", "rsi", "rdi",
		       "r8", "r9", "r10", "r11");

	early_cpu_set_mode(early_cpu_mode);

	/* An error exit: gcc drops code after a noreturn call, so asm keeps one after it. */
	if (boot_cpu_level < 4)
		asm volatile("call panic\n\t"
			     "call dead_after_panic"
			     : : "D" ("early CPU too old") : "memory");
}
