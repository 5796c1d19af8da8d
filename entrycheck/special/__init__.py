"""Special sections: the kernel's descriptor tables (alternatives, jump labels, ...)."""
