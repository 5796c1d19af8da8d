/* Models arch/x86/mm/kasan_init_64.c: kasan_early_init, called only on the native path. */
#include "compiler.h"
#include "setup.h"

volatile unsigned long kasan_shadow_ready;

noinline __init void kasan_early_init(void)
{
	kasan_shadow_ready = 1;
}
