/* Models arch/x86/boot/compressed/string.c: memset and memcpy with rep stos/movs, so the
 * compiler cannot turn them into calls to themselves. */
#include "boot.h"

void *memset(void *s, int c, unsigned long n)
{
	void *d = s;

	asm volatile("rep stosb" : "+D"(d), "+c"(n) : "a"(c) : "memory");
	return s;
}

void *memcpy(void *dst, const void *src, unsigned long n)
{
	void *d = dst;

	asm volatile("rep movsb" : "+D"(d), "+S"(src), "+c"(n) : : "memory");
	return dst;
}
