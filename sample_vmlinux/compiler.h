/* Models include/linux/compiler_types.h + init.h: the section and inlining annotations. */
#ifndef SAMPLE_COMPILER_H
#define SAMPLE_COMPILER_H

/* noipa = noinline + noclone + no identical-code folding: keeps one symbol per function. */
#define noinline	__attribute__((__noipa__))
#define __noreturn	__attribute__((__noreturn__))
#define __always_inline	inline __attribute__((__always_inline__))
#define __head		__attribute__((__section__(".head.text")))
#define __init		__attribute__((__section__(".init.text")))
#define noinstr		__attribute__((__section__(".noinstr.text")))
#define __initdata	__attribute__((__section__(".init.data")))

#define unlikely(x)	__builtin_expect(!!(x), 0)

#define NULL ((void *)0)

#endif
