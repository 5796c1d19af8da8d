"""Boot traces: QEMU runs, their mapping onto functions, trace files."""
