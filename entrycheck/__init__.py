"""entrycheck: static analysis of the Linux x86 kernel's boot entry paths."""

__version__ = "0.1.0"
