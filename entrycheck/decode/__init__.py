"""Instruction decoding: x86 code of one function into control transfers and effects."""
