#!/usr/bin/env python3
"""Benchmark: entrycheck cold and cached against `objdump -d` of .text + .init.text, one run.

For each image, measured one after the other in the same run (wall and CPU seconds, peak
RSS of each child):
- `objdump -d -j .text -j .init.text`: the yardstick;
- the boot-path analysis of all entries, cold (`skip --entry xen-pv --boot-only`);
- the whole-boot analysis of all entries, cold (`reach --scope all`);
- a cached answer from each (`skip --entry pvh --boot-only`, `reach --scope all` again).
The ratios divide by objdump's time of the same run. Targets (issues 10 and 11): boot path
cold <= 0.7x, whole boot cold <= 1.0x, cached answers < 0.5 s, peak RSS < 1 GiB.

    python3 scripts/benchmark.py [IMAGE ...]   # default: the cached Debian 6.1 and sid kernels
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

KERNELS = Path.home() / ".cache/entrycheck/kernels"
DEFAULTS = ("6.1.0-*-cloud-amd64", "7.*-cloud-amd64")


def measure(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds and peak RSS (MiB) of one child process."""
    start = time.perf_counter()
    child = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, env=env)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"benchmark: error: {' '.join(cmd)} failed")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def bench(image: Path) -> None:
    entrycheck = [sys.executable, "-m", "entrycheck.cli"]
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "XDG_CACHE_HOME": cache}
        rows = [
            ("objdump -d .text+.init.text",
             measure(["objdump", "-d", "-j", ".text", "-j", ".init.text", str(image)])),
            ("boot path, cold (all entries)",
             measure([*entrycheck, "skip", str(image), "--entry", "xen-pv", "--boot-only",
                      "--json"], env)),
            ("boot path, cached answer",
             measure([*entrycheck, "skip", str(image), "--entry", "pvh", "--boot-only",
                      "--json"], env)),
            ("whole boot, cold (all entries)",
             measure([*entrycheck, "reach", str(image), "--entry", "native", "--scope", "all",
                      "--json"], env)),
            ("whole boot, cached answer",
             measure([*entrycheck, "reach", str(image), "--entry", "pvh", "--scope", "all",
                      "--json"], env)),
        ]
    base_wall, base_cpu = rows[0][1][0], rows[0][1][1]
    print(f"{image} ({image.stat().st_size / 2**20:.0f} MiB)")
    print(f"  {'':32} {'wall':>8} {'cpu':>8} {'peak':>9}   ratio wall / cpu")
    for name, (wall, cpu, rss) in rows:
        print(f"  {name:32} {wall:7.2f}s {cpu:7.2f}s {rss:6.0f} MiB   "
              f"{wall / base_wall:.2f}x / {cpu / base_cpu:.2f}x")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("images", nargs="*", type=Path)
    images = parser.parse_args().images or [
        path for pattern in DEFAULTS for path in sorted(KERNELS.glob(pattern))[-1:]
        for path in [path / "vmlinux.nodebug"]]
    if not images:
        print("benchmark: error: no cached kernel (scripts/fetch_kernel.py fetches them)",
              file=sys.stderr)
        return 2
    for image in images:
        if not image.exists():
            print(f"benchmark: error: {image} missing (scripts/fetch_kernel.py fetches it)",
                  file=sys.stderr)
            return 2
        bench(image)
    return 0


if __name__ == "__main__":
    sys.exit(main())
