"""Cross-checks of the fast decoder: boundaries against objdump, direct edges against angr."""
