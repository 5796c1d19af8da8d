#!/usr/bin/env python3
"""Benchmark: entrycheck cold and cached against `objdump -d` of .text + .init.text, one run.

For each image, measured one after the other in the same run (wall and CPU seconds, peak
RSS of each child):
- `objdump -d -j .text -j .init.text`: the yardstick;
- the boot-path analysis of all entries, cold (`skip --entry xen-pv --boot-only`);
- the whole-boot analysis of all entries, cold (`reach --scope all`);
- a cached answer from each (`skip --entry pvh --boot-only`, `reach --scope all` again).
Each row is the fastest of `--repeat` rounds (default 3) by CPU time, beside the slowest;
the ratios divide by objdump's time of the same rounds. Targets (issues 10 and 11): boot path
cold <= 0.7x, whole boot cold <= 1.0x, cached answers < 0.5 s, peak RSS < 1 GiB.

    python3 scripts/benchmark.py [--repeat N] [IMAGE ...]   # default: Debian 6.1 and sid
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


def one_round(image: Path) -> list[tuple[str, tuple[float, float, float]]]:
    """Each command once, in order, with a fresh cache (the cached answers read what the
    cold runs before them stored)."""
    entrycheck = [sys.executable, "-m", "entrycheck.cli"]
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "XDG_CACHE_HOME": cache}
        return [
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


def bench(image: Path, repeat: int) -> None:
    """`repeat` rounds; each row shows its fastest run by CPU time (this machine's timings
    vary by a third between runs), the spread of CPU times and the largest peak RSS."""
    rounds = [one_round(image) for _ in range(repeat)]
    rows = []
    for i, (name, _) in enumerate(rounds[0]):
        runs = [r[i][1] for r in rounds]
        wall, cpu, _ = min(runs, key=lambda run: run[1])
        rows.append((name, wall, cpu, max(run[1] for run in runs), max(run[2] for run in runs)))
    base_wall, base_cpu = rows[0][1], rows[0][2]
    print(f"{image} ({image.stat().st_size / 2**20:.0f} MiB), fastest of {repeat}")
    print(f"  {'':32} {'wall':>8} {'cpu':>8} {'cpu max':>8} {'peak':>9}   ratio wall / cpu")
    for name, wall, cpu, slowest, rss in rows:
        print(f"  {name:32} {wall:7.2f}s {cpu:7.2f}s {slowest:7.2f}s {rss:6.0f} MiB   "
              f"{wall / base_wall:.2f}x / {cpu / base_cpu:.2f}x")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("images", nargs="*", type=Path)
    parser.add_argument("--repeat", type=int, default=3, help="rounds (default 3)")
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    images = args.images or [
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
        bench(image, args.repeat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
