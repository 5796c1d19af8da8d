/* Models include/linux/hidden.h: every C symbol is hidden, so a -pie link needs no GOT and
 * the linker turns the C functions into LOCAL symbols (efi_pe_entry among them). */
#pragma GCC visibility push(hidden)
