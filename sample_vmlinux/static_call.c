/* Models kernel/static_call_inline.c: __static_call_update() retargets a trampoline. */
#include "compiler.h"
#include "static_call.h"

volatile unsigned long static_call_updates;

noinline void __static_call_update(struct static_call_key *key, void *tramp, void *func)
{
	key->func = func;
	/* arch_static_call_transform() would rewrite the jmp at tramp here. */
	static_call_updates += (unsigned long)tramp != 0;
}
