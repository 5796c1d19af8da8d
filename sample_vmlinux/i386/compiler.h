/* Annotations as in include/linux/init.h and compiler_types.h, reduced to what the sample uses. */
#ifndef SAMPLE_COMPILER_H
#define SAMPLE_COMPILER_H

#define __init		__attribute__((section(".init.text"), cold))
#define __initdata	__attribute__((section(".init.data")))
#define __noreturn	__attribute__((noreturn))
/* noipa: gcc -O2 may not clone, fold or inline: one symbol per function. */
#define noinline	__attribute__((noipa))
#define asmlinkage	__attribute__((regparm(0)))
#define __visible	__attribute__((externally_visible))

#endif
