#!/usr/bin/env python3
"""Benchmark: entrycheck cold and cached against `objdump -d` of .text + .init.text, one run.

Prints wall time and peak RSS of each step and the ratio to the objdump time measured in
the same run (targets from the real-kernel issue: cold <= 1.0x objdump, peak RSS <= 4 GiB,
a repeated query on the same build <= 2 s).

    python3 scripts/benchmark.py [IMAGE ...]      # default: the cached Debian 6.1 kernel
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DEFAULT = Path.home() / ".cache/entrycheck/kernels/6.1.0-56-cloud-amd64"


def measure(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one child process."""
    start = time.perf_counter()
    child = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, env=env)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"benchmark: error: {' '.join(cmd)} failed")
    return wall, usage.ru_maxrss / 1024


def bench(image: Path) -> None:
    entrycheck = [sys.executable, "-m", "entrycheck.cli"]
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "XDG_CACHE_HOME": cache}
        objdump, objdump_rss = measure(
            ["objdump", "-d", "-j", ".text", "-j", ".init.text", str(image)])
        cold, cold_rss = measure([*entrycheck, "skip", str(image), "--entry", "xen-pv",
                                  "--json"], env)
        warm, _ = measure([*entrycheck, "skip", str(image), "--entry", "pvh", "--json"], env)
    print(f"{image} ({image.stat().st_size / 2**20:.0f} MiB)")
    print(f"  objdump -d .text+.init.text  {objdump:7.2f} s  {objdump_rss:7.0f} MiB")
    print(f"  entrycheck cold (all entries) {cold:7.2f} s  {cold_rss:7.0f} MiB peak"
          f"  ratio {cold / objdump:.2f}x  target <= 1.0x")
    print(f"  entrycheck repeated query    {warm:7.2f} s  target <= 2 s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("images", nargs="*", type=Path,
                        default=[DEFAULT / "vmlinux.nodebug", DEFAULT / "vmlinux"])
    for image in parser.parse_args().images:
        if not image.exists():
            print(f"benchmark: error: {image} missing (scripts/fetch_kernel.py fetches it)",
                  file=sys.stderr)
            return 2
        bench(image)
    return 0


if __name__ == "__main__":
    sys.exit(main())
