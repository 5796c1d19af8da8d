#!/usr/bin/env python3
"""A seeded, bounded fuzz campaign against the entrycheck command line (issue 13).

Each case is a malformed input of one family (ELF mutations of the sample kernel, bzImage
headers, --build-dir trees, rule YAML, trace JSON, baselines, CLI arguments and paths,
cache entries, output targets), written into a folder of its own and given to the CLI
in a child process under a timeout and an address-space limit. Outcomes:

  ok         exit 0, or 1 from a command whose 1 means findings (check, validate, crosscheck)
  error      exit 2 with exactly one stderr line `entrycheck: error: ...` under 300 chars
  bad-line   exit 2, but stderr is not that one line (usage text, several lines, too long)
  internal   the CLI's last-resort handler caught an unexpected exception (a bug hidden)
  traceback  a Python traceback
  hang       killed at the timeout
  memory     MemoryError, or a peak RSS over 1 GiB
  unsafe     the case's own check failed (a file lost or replaced, a temp file left, ...)
  other      any other exit code or signal

Case `i` of family `f` under seed `s` is always the same input: `--family f --index i`
re-runs one, `--keep DIR` keeps its folder. The `fork` runner (default) forks a parent
that has imported entrycheck, so a case costs its analysis and not Python's start-up;
`exec` starts `python -m entrycheck.cli` per case.

    .venv/bin/python scripts/fuzz.py --seed 1 --cases 500 --json fuzz-summary.json
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fuzzing import FAMILIES, WEIGHTS, Case, Corpus, make_case, make_corpus

GIB = 1 << 30
FINDINGS_COMMANDS = ("check", "validate", "crosscheck", "why")  # exit 1: findings, not reached
CLASSES = ("ok", "error", "bad-line", "internal", "traceback", "hang", "memory", "unsafe",
           "other")


# -- running ------------------------------------------------------------------------------


@dataclass
class Outcome:
    family: str
    index: int
    label: str
    outcome: str
    code: int | None
    seconds: float
    max_rss_mib: float
    line: str


def _child(argv: list[str], work: Path, env: dict[str, str], memory: int) -> None:
    """In the forked child: limits, a clean environment, the CLI as `entrycheck` runs it."""
    code = 1
    try:
        os.setpgid(0, 0)
        os.chdir(env.pop("_CWD", work))
        os.environ.clear()
        os.environ.update(env)
        os.umask(0o022)
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(os.open(work / ".stdout", os.O_WRONLY | os.O_CREAT, 0o600), 1)
        os.dup2(os.open(work / ".stderr", os.O_WRONLY | os.O_CREAT, 0o600), 2)
        sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), encoding="utf-8")
        sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), encoding="utf-8",
                                      errors="backslashreplace", line_buffering=True)
        sys.argv = ["entrycheck", *argv]
        from entrycheck import cli

        try:
            result = cli.main(argv)
            code = result if isinstance(result, int) else 0
        except SystemExit as exc:
            if exc.code is None or isinstance(exc.code, int):
                code = exc.code or 0
            else:
                print(exc.code, file=sys.stderr)
                code = 1
        except BaseException:
            traceback.print_exc()
            code = 1
        try:
            sys.stdout.flush()
        except BaseException:
            traceback.print_exc()
            code = 120
        sys.stderr.flush()
    finally:
        os._exit(code)


def _limits(memory: int) -> Callable[[], None]:
    def apply() -> None:
        os.setpgid(0, 0)
        os.umask(0o022)
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    return apply


def run_case(case: Case, work: Path, runner: str, timeout: float,
             memory: int) -> tuple[int | None, bool, float, float]:
    """(exit code or -signal, timed out, seconds, peak RSS MiB)."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(work / "home"),
           **{k: os.environ[k] for k in ("PYTHONPATH",) if k in os.environ},
           "XDG_CACHE_HOME": str(work / "xdg"), "LANG": "C.UTF-8", **case.env}
    start = time.monotonic()
    sys.stdout.flush()
    sys.stderr.flush()
    if runner == "fork":
        pid = os.fork()
        if pid == 0:
            _child(case.argv, work, dict(env), memory)
    else:
        cwd = env.pop("_CWD", str(work))
        with (work / ".stdout").open("wb") as out, (work / ".stderr").open("wb") as err:
            proc = subprocess.Popen([sys.executable, "-m", "entrycheck.cli",
                                     *map(os.fsencode, case.argv)],
                                    stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env,
                                    cwd=cwd, preexec_fn=_limits(memory))
        pid = proc.pid
    timed_out = False
    while True:
        done, status, usage = os.wait4(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() - start > timeout:
            timed_out = True
            try:
                os.killpg(pid, signal.SIGKILL)
            except OSError:
                os.kill(pid, signal.SIGKILL)
            done, status, usage = os.wait4(pid, 0)
            break
        time.sleep(0.005)
    if runner != "fork":
        proc.returncode = 0  # reaped above
    with contextlib.suppress(OSError):  # whatever the case started (dot, objdump, qemu)
        os.killpg(pid, signal.SIGKILL)
    code = os.waitstatus_to_exitcode(status)
    return code, timed_out, time.monotonic() - start, usage.ru_maxrss / 1024


def classify(case: Case, code: int | None, timed_out: bool, rss: float, stderr: str,
             unsafe: str | None) -> tuple[str, str]:
    """(outcome, the line that shows it)."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    last = lines[-1] if lines else ""
    if timed_out:
        return "hang", ""
    if "MemoryError" in stderr or rss > 1024:
        return "memory", f"peak {rss:.0f} MiB {last[:200]}"
    if "Traceback (most recent call last)" in stderr:
        return "traceback", last[:200]
    if "internal error" in stderr:
        return "internal", last[:200]
    if unsafe:
        return "unsafe", unsafe
    if code == 2:
        before = all(line.startswith(("entrycheck: warning: ", "entrycheck: note: "))
                     and len(line) < 300 for line in lines[:-1])
        if before and last.startswith("entrycheck: error: ") and len(last) < 300:
            return "error", last[:200]
        return "bad-line", f"{len(lines)} lines, {len(last)} chars: {last[:160]}"
    if code == 0 or (code == 1 and case.argv and case.argv[0] in FINDINGS_COMMANDS):
        long = [line for line in lines if len(line) >= 300]
        return ("bad-line", f"a {len(long[0])}-char stderr line") if long else ("ok", "")
    return "other", f"exit {code}: {last[:160]}"


def run_one(family: str, index: int, seed: int, corpus: Corpus, scratch: Path, runner: str,
            timeout: float, memory: int, keep: Path | None = None) -> Outcome:
    work = Path(tempfile.mkdtemp(prefix=f"{family}-{index}-", dir=scratch))
    try:
        try:
            case = make_case(family, index, seed, work, corpus)
        except OSError as exc:  # this machine cannot make the input (no mkfifo...)
            return Outcome(family, index, "setup", "ok", None, 0.0, 0.0, f"skipped: {exc}")
        code, timed_out, seconds, rss = run_case(case, work, runner, timeout, memory)
        stderr = (work / ".stderr").read_text(errors="replace")
        unsafe = None
        if case.check is not None:
            try:
                unsafe = case.check(work)
            except OSError as exc:
                unsafe = f"check failed: {exc}"
        outcome, line = classify(case, code, timed_out, rss, stderr, unsafe)
        return Outcome(family, index, case.label, outcome, code, round(seconds, 3),
                       round(rss, 1), line)
    finally:
        if keep is not None:
            shutil.copytree(work, keep / work.name, symlinks=True, dirs_exist_ok=True)
        _remove(work)


def _remove(folder: Path) -> None:
    for p in [folder, *folder.rglob("*")]:
        try:
            if p.is_dir() and not p.is_symlink():
                p.chmod(0o755)
        except OSError:
            pass
    shutil.rmtree(folder, ignore_errors=True)


def plan(families: list[str], cases: int, seed: int) -> list[tuple[str, int]]:
    """`cases` (family, index) pairs, shared out by weight, interleaved."""
    total = sum(WEIGHTS[f] for f in families)
    counts = {f: max(1, round(cases * WEIGHTS[f] / total)) for f in families}
    order = [(f, i) for f in families for i in range(counts[f])]
    random.Random(seed).shuffle(order)
    return order


def table(results: list[Outcome]) -> str:
    fams = list(dict.fromkeys(r.family for r in results))
    counts = {f: Counter(r.outcome for r in results if r.family == f) for f in fams}
    head = f"{'family':<10} {'runs':>5} " + " ".join(f"{c:>9}" for c in CLASSES) + \
        "  s/case"
    rows = [head, "-" * len(head)]
    for f in [*fams, "total"]:
        c = Counter(r.outcome for r in results) if f == "total" else counts[f]
        runs = sum(c.values())
        secs = [r.seconds for r in results if f in ("total", r.family)]
        rows.append(f"{f:<10} {runs:>5} " + " ".join(f"{c.get(k, 0):>9}" for k in CLASSES)
                    + f"  {sum(secs) / max(len(secs), 1):6.2f}")
    return "\n".join(rows)


def campaign(families: list[str], cases: int, seed: int, runner: str = "fork",
             timeout: float = 20.0, memory: int = 4 * GIB, budget: float | None = None,
             progress: bool = False, only: int | None = None,
             keep: Path | None = None) -> tuple[list[Outcome], float]:
    """Run the campaign; (outcomes, seconds). `budget` stops it early (seconds)."""
    scratch = Path(tempfile.mkdtemp(prefix="entrycheck-fuzz-"))
    start = time.monotonic()
    try:
        corpus = make_corpus(scratch / "corpus")
        if runner == "fork":
            _preload()
        todo = [(families[0], only)] if only is not None else plan(families, cases, seed)
        results = []
        for n, (family, index) in enumerate(todo):
            if budget is not None and time.monotonic() - start > budget:
                break
            results.append(run_one(family, index, seed, corpus, scratch, runner, timeout,
                                   memory, keep))
            r = results[-1]
            if progress and r.outcome not in ("ok", "error"):
                print(f"[{n + 1}/{len(todo)}] {r.family} {r.index} {r.label}: {r.outcome} "
                      f"{r.line}", file=sys.stderr)
            elif progress and n % 100 == 0:
                print(f"[{n + 1}/{len(todo)}] {time.monotonic() - start:.0f} s",
                      file=sys.stderr)
        return results, time.monotonic() - start
    finally:
        _remove(scratch)


def _preload() -> None:
    """Import what the commands use, so each forked case starts warm."""
    import entrycheck.check.evaluate
    import entrycheck.check.formats
    import entrycheck.check.rules
    import entrycheck.cli
    import entrycheck.graph
    import entrycheck.report.html
    import entrycheck.splice
    from entrycheck import cache
    from entrycheck.knowledge import x86

    cache.code_digest()
    x86()
    assert entrycheck.check.evaluate and entrycheck.check.formats and entrycheck.check.rules
    assert entrycheck.cli and entrycheck.graph and entrycheck.report.html and entrycheck.splice


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--cases", type=int, default=450, help="cases in all (default 450)")
    parser.add_argument("--family", action="append", choices=list(FAMILIES),
                        help="only these families (repeatable)")
    parser.add_argument("--index", type=int, help="run one case of --family")
    parser.add_argument("--runner", choices=("fork", "exec"), default="fork")
    parser.add_argument("--timeout", type=float, default=20.0, help="seconds per case")
    parser.add_argument("--memory", type=float, default=4.0, help="GiB of address space")
    parser.add_argument("--budget", type=float, help="stop after this many seconds")
    parser.add_argument("--json", type=Path, help="write the summary here")
    parser.add_argument("--keep", type=Path, help="copy each case folder here")
    parser.add_argument("-q", "--quiet", action="store_true")
    args = parser.parse_args(argv)
    families = args.family or list(FAMILIES)
    if args.index is not None and len(families) != 1:
        parser.error("--index needs one --family")
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
    results, seconds = campaign(families, args.cases, args.seed, args.runner, args.timeout,
                                int(args.memory * GIB), args.budget, not args.quiet,
                                args.index, args.keep)
    print(table(results))
    bad = [r for r in results if r.outcome not in ("ok", "error")]
    labels = Counter((r.family, r.label, r.outcome) for r in bad)
    for (family, label, outcome), n in labels.most_common():
        example = next(r for r in bad if (r.family, r.label, r.outcome) ==
                       (family, label, outcome))
        print(f"{n:>5} {outcome:<9} {label:<32} e.g. --family {family} --index "
              f"{example.index}: {example.line[:120]}")
    print(f"{len(results)} cases in {seconds:.0f} s (seed {args.seed}, runner {args.runner}, "
          f"peak RSS {max((r.max_rss_mib for r in results), default=0):.0f} MiB)")
    if args.json:
        summary = {"seed": args.seed, "runner": args.runner, "timeout": args.timeout,
                   "memory_gib": args.memory, "cases": len(results), "seconds": round(seconds),
                   "outcomes": Counter(r.outcome for r in results),
                   "families": {f: Counter(r.outcome for r in results if r.family == f)
                                for f in families},
                   "failures": [r.__dict__ for r in bad]}
        args.json.write_text(json.dumps(summary, indent=1) + "\n")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
