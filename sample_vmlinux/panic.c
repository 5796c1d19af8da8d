/* Models kernel/panic.c: panic() never returns (an error exit, not a join of boot paths). */
#include "compiler.h"
#include "setup.h"

volatile const char *panic_message;

noinline __noreturn void panic(const char *fmt)
{
	panic_message = fmt;
	for (;;)
		asm volatile("hlt");
}
