"""Reading kernel images: ELF vmlinux, symbols as functions, bzImage headers, DWARF."""
