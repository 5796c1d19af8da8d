"""The `entrycheck` command line: parses arguments, runs a query, prints text or JSON."""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from importlib import resources
from pathlib import Path
from typing import NoReturn

from entrycheck import __version__, queries, safeio
from entrycheck.analysis import Analysis, analyse
from entrycheck.binary import bzimage
from entrycheck.check import FORMATS, RULES_URL, SEVERITIES
from entrycheck.errors import EntrycheckError, did_you_mean
from entrycheck.progress import progress_bar
from entrycheck.render import render
from entrycheck.trace import files as trace_files
from entrycheck.trace.mapping import ENTRIES as TRACE_ENTRIES
from entrycheck.trace.mapping import INIT_END

MAX_ERROR = 280  # characters after "entrycheck: error: "

# The check, reports, traces, splicing and DWARF are imported where a command needs them:
# a cached answer should not pay for modules it does not use.


def builtin_rules() -> Path:
    """The rules shipped with the package (rules/ of the source tree)."""
    return Path(str(resources.files("entrycheck").joinpath("data/rules")))


def sample_image() -> Path:
    """The sample kernel shipped with the package (built from sample_vmlinux/)."""
    return Path(str(resources.files("entrycheck").joinpath("data/sample_vmlinux")))


class _Parser(argparse.ArgumentParser):
    """argparse, with a usage error as one line `entrycheck: error: ...` and exit 2."""

    def error(self, message: str) -> NoReturn:
        command = self.prog.removeprefix("entrycheck").strip()
        see = f"entrycheck {command} --help" if command else "entrycheck --help"
        print(f"entrycheck: error: {safeio.shown(message, 220)} (see {see})", file=sys.stderr)
        sys.exit(2)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="entrycheck",
        description="Static analysis of the Linux x86 kernel's boot entry paths.")
    parser.add_argument("--version", action="version", version=f"entrycheck {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("image", nargs="?",  # a str: _parse tells `./f` from a name `f`
                        help="vmlinux ELF (default: the bundled sample_vmlinux)")
    common.add_argument("--json", action="store_true", help="print one JSON object")
    common.add_argument("--cache-dir", type=Path, help="analysis cache (~/.cache/entrycheck)")
    common.add_argument("--build-dir", type=Path, metavar="DIR",
                        help="a kernel build tree: vmlinux, arch/x86/boot/compressed/vmlinux "
                             "and arch/x86/boot/bzImage, followed from firmware entry on")
    common.add_argument("--compressed", type=Path, metavar="FILE",
                        help="the compressed vmlinux (arch/x86/boot/compressed/vmlinux)")
    common.add_argument("--bzimage", type=Path, metavar="FILE",
                        help="the bzImage whose header gives the EFI entries")
    common.add_argument("--define", action="append", default=[], metavar="NAME=SYMBOL[@32]",
                        help="add an entry (also possible as --entry NAME=SYMBOL)")
    scoped = argparse.ArgumentParser(add_help=False)
    scoped.add_argument("--scope", choices=queries.SCOPES, default="init",
                        help="init: init code on the boot path (default); early: all code "
                             "on the boot path (up to start_kernel); all: everything reached")
    entry = argparse.ArgumentParser(add_help=False)
    entry.add_argument("--entry", required=True,
                       help="entry name (see `entries`), or NAME=SYMBOL[@32] to define one")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("entries", parents=[common], help="list the entries found in the image")
    sub.add_parser("reach", parents=[common, scoped, entry], help="what an entry reaches")
    p = sub.add_parser("skip", parents=[common, scoped, entry],
                       help="what the reference reaches before convergence, the entry never")
    p.add_argument("--against", default=None, help="reference entry (default: native)")
    p.add_argument("--trace", type=Path, help="a trace of a real boot through the entry")
    p.add_argument("--reference-trace", type=Path, help="a trace of a real reference boot")
    p.add_argument("--boot-only", action="store_true",
                   help="diff the boot paths only (up to start_kernel): no whole-boot analysis")
    p.add_argument("--with-faults", action="store_true",
                   help="keep the fault layer (exception handlers, WARN/BUG, panic) in the "
                        "whole-boot diff")
    p.add_argument("--hooks", action="store_true",
                   help="print the hook table (slot -> target per entry) of the slots whose "
                        "targets differ")
    p = sub.add_parser("why", parents=[common, entry],
                       usage="entrycheck why [IMAGE] --entry E FUNCTION",
                       help="a call chain from the entry to FUNCTION",
                       description="A call chain from the entry to FUNCTION, edge by edge; "
                                   "a static inline helper is found through DWARF.")
    p.add_argument("function", nargs="?", metavar="FUNCTION",
                   help="the function to explain (a symbol, or with DWARF an inlined helper)")
    _tool_commands(sub, common, entry)
    return parser


def _tool_commands(sub: argparse._SubParsersAction, common: argparse.ArgumentParser,
                   entry: argparse.ArgumentParser) -> None:
    """Commands beyond the path queries: traces, the check, reports, the cross-check."""
    p = sub.add_parser("trace", parents=[common], help="boot under QEMU, record what ran")
    p.add_argument("--entry", required=True, choices=TRACE_ENTRIES)
    p.add_argument("-o", "--output", type=Path, required=True, help="trace file (JSON)")
    p.add_argument("--kernel", type=Path,
                   help="what QEMU boots: the bzImage for native (required), the vmlinux "
                        "for pvh (default: IMAGE)")
    p.add_argument("--until", default="start_kernel",
                   help=f"stop at this function, or `{INIT_END}` (default: start_kernel)")
    p.add_argument("--timeout", type=float, default=180, help="seconds (default 180)")
    p = sub.add_parser("check", parents=[common],
                       help="apply the rules: exit 0 clean, 1 findings at or above --fail-on")
    p.add_argument("--base", type=Path, help="base build: report only findings new in IMAGE")
    p.add_argument("--baseline", type=Path, help="findings file to ignore (--write-baseline)")
    p.add_argument("--write-baseline", type=Path, metavar="FILE",
                   help="write the current findings as a baseline")
    p.add_argument("--rules", type=Path, help="rules folder or file (default: built-in rules)")
    p.add_argument("--format", choices=FORMATS, default=None,
                   help="text (default), json (the same as --json), sarif or junit")
    p.add_argument("--output", type=Path, help="write the report here instead of stdout")
    p.add_argument("--fail-on", choices=SEVERITIES, default="warning",
                   help="lowest severity that fails the check (default: warning)")
    p.add_argument("--source-root", action="append", default=[], metavar="DIR",
                   help="where DWARF's source file names start (SARIF gives paths under it "
                        "relative to %%SRCROOT%%); default: the build directory DWARF names")
    p.add_argument("--rules-url", metavar="URL", default=None,
                   help="where rules/README.md is served, for SARIF help links "
                        f"(default: {RULES_URL})")
    p = sub.add_parser("report", parents=[common],
                       help="write an HTML report (index.html, report.json, SVG graphs) to DIR")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="DIR")
    p.add_argument("--force", action="store_true",
                   help="write into DIR even if it holds other files (they are kept)")
    p.add_argument("--rules", type=Path, help="rules whose findings the report shows "
                                              "(default: built-in rules)")
    p = sub.add_parser("crosscheck", parents=[common],
                       usage="entrycheck crosscheck [IMAGE] [options] [FUNCTION ...]",
                       help="compare the fast decoder's direct edges with angr's, or its "
                            "instruction boundaries with objdump's (--objdump)",
                       description="Compare the fast decoder's direct edges with angr's, or "
                                   "(--objdump) its instruction boundaries with objdump's. "
                                   "The first word is the IMAGE when it names an existing "
                                   "file or a path (it has a /), else a FUNCTION.")
    p.add_argument("--objdump", action="store_true",
                   help="instruction boundaries of every sized function against objdump -d")
    p.add_argument("--sample", type=int, default=20, help="functions to sample (default 20)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("functions", nargs="*", default=None, metavar="FUNCTION",
                   help="functions to compare (default: a random sample)")
    p = sub.add_parser("validate", parents=[common, entry],
                       help="check that every traced function is in the static reach set")
    p.add_argument("--trace", type=Path, required=True, help="trace file from `trace`")


def _parse(argv: list[str] | None) -> argparse.Namespace:
    """Parse; positionals may come after options (`why IMAGE --entry E FUNCTION`)."""
    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    words = [w for w in extra if not w.startswith("-")]
    if len(words) != len(extra):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if args.command == "why":
        words = [w for w in (args.image, args.function) if w is not None] + words
        if len(words) not in (1, 2):
            parser.error("why takes [IMAGE] and one FUNCTION")
        if len(words) == 1 and ("/" in words[0] or os.path.isfile(words[0])):
            parser.error(f"why needs a FUNCTION after the image {safeio.shown(words[0])}")
        args.image = words[0] if len(words) == 2 else None
        args.function = words[-1]
    elif args.command == "crosscheck":
        # the first word is the IMAGE if it is a path, else a function (`crosscheck start_kernel`)
        words = [w for w in (args.image, *(args.functions or ()), *words) if w is not None]
        first_is_image = bool(words) and ("/" in words[0] or os.path.exists(words[0]))
        args.image = words.pop(0) if first_is_image else None
        args.functions = words
    elif words:
        if args.image is not None or len(words) > 1:
            parser.error(f"unrecognized arguments: {' '.join(words)}")
        args.image = words[0]
    args.image = None if args.image is None else Path(args.image)
    return args


def _run(args: argparse.Namespace) -> dict:
    defined = list(args.define)
    entry_name = getattr(args, "entry", None)
    if entry_name and "=" in entry_name:
        defined.append(entry_name)
        entry_name = entry_name.split("=", 1)[0]
    image = args.image
    if image is None and args.build_dir is not None:
        image = args.build_dir / "vmlinux"
    if image is None:
        image = sample_image()
        print(f"entrycheck: note: no IMAGE given, using the sample kernel {image}",
              file=sys.stderr)
    show = progress_bar(enabled=not args.json and getattr(args, "format", None) in (None, "text"))
    if args.command == "trace":
        return _trace(args, image)
    if args.command == "check":
        return _check(args, image, show)
    if args.command == "crosscheck":
        return _crosscheck(args, image)
    if bzimage.is_bzimage(image):
        if args.command != "entries":
            raise EntrycheckError(f"{image} is a bzImage: it has no symbols; give the vmlinux, "
                                  "the compressed vmlinux, or --build-dir")
        return queries.header_entries(bzimage.parse(image))
    complete = args.command in ("validate", "report") or (
        args.command == "reach" and args.scope == "all") or (
        args.command == "skip" and not args.boot_only)
    analysis = _analysis(args, image, defined, show, complete)
    if entry_name is not None:
        _known_entry(analysis, entry_name)
    if args.command == "entries":
        return queries.entries(analysis)
    if args.command == "reach":
        return queries.reach(analysis, entry_name, args.scope)
    if args.command == "skip":
        return _skip(args, analysis, entry_name)
    if args.command == "report":
        from entrycheck.check import evaluate, rules
        from entrycheck.report.html import write_report

        rule_set = rules.load_rules(args.rules or builtin_rules(), defined)
        findings = [f.as_json() for f in evaluate.evaluate(analysis, rule_set) if not f.suppressed]
        return write_report(analysis, args.output, force=args.force, findings=findings,
                            progress=progress_bar(enabled=not args.json))
    if args.command == "validate":
        return queries.validate(analysis, trace_files.read_trace(args.trace), entry_name)
    return _why(args, analysis, image, defined, show, entry_name)


def _has_entries(analysis: Analysis, which: str) -> None:
    """EntrycheckError unless the image has a boot entry: a check of no entry would pass
    whatever the file is."""
    if not analysis.entries:
        raise EntrycheckError(f"{which}{safeio.shown(analysis.image)}: no boot entry found "
                              "(not an x86 kernel image?); define one with --define "
                              "NAME=SYMBOL")


def _known_entry(analysis: Analysis, name: str, role: str = "") -> None:
    """EntrycheckError, with the closest of the image's entry names, unless the image has
    an entry `name` (`role`: what the entry stands for, such as the --against default)."""
    names = [e.name for e in analysis.entries]
    if name not in names:
        raise EntrycheckError(f"no entry {safeio.shown(name)!r}{role} in this image (entries "
                              f"found: {', '.join(names) or 'none'}){did_you_mean(name, names)}")


def _skip(args: argparse.Namespace, analysis: Analysis, entry_name: str) -> dict:
    """skip, with the real boots beside the static diff when traces are given: each trace
    must be of the entry it stands for and of this build."""
    against = args.against or analysis.reference
    _known_entry(analysis, against, "" if args.against else " (the reference entry, --against)")
    if against == entry_name:
        raise EntrycheckError(f"skip diffs two entries: --entry and --against are both "
                              f"{safeio.shown(against)}")
    if args.boot_only and (args.with_faults or args.hooks):
        raise EntrycheckError("--boot-only has no whole-boot diff for --with-faults or --hooks")
    result = queries.skip(analysis, entry_name, against, args.scope, args.with_faults)
    if args.hooks:
        result["show"] = "hooks"
    if (args.trace is None) != (args.reference_trace is None):
        raise EntrycheckError("--trace and --reference-trace go together")
    if args.trace is not None:
        traces = []
        for path, entry, option in ((args.trace, result["entry"], "--trace"),
                                    (args.reference_trace, result["against"],
                                     "--reference-trace")):
            trace = trace_files.read_trace(path)
            if trace.entry != entry:
                raise EntrycheckError(f"{safeio.shown(path)}: a trace of a {trace.entry} boot, "
                                      f"but {option} stands for {entry}")
            if trace.build_id and analysis.build_id and trace.build_id != analysis.build_id:
                raise EntrycheckError(f"{safeio.shown(path)}: traced on build-id "
                                      f"{trace.build_id}, not this image's {analysis.build_id}")
            traces.append(trace)
        result["dynamic"] = queries.dynamic_diff(result, *traces)
    return result


def _why(args: argparse.Namespace, analysis: Analysis, image: Path, defined: list[str], show,
         entry_name: str) -> dict:
    """why: a chain on the boot path, else through everything the entry reaches (the
    boot graph stops at start_kernel, so off the boot path it may know only a runtime
    route such as a secondary CPU's start); an unknown function gets the closest names."""
    try:
        result = queries.why(analysis, entry_name, args.function)
    except EntrycheckError as exc:
        if analysis.complete:
            raise
        if not analysis.names.candidates(args.function):
            names = set(analysis.names.by_name) | _inlined_names(analysis, entry_name)
            hint = did_you_mean(args.function, names)
            raise EntrycheckError(f"{exc}{hint}") from None
        result = None
    if result is not None and (result["on_boot_path"] or analysis.complete):
        return result
    complete = _analysis(args, image, defined, show, complete=True)
    return queries.why(complete, entry_name, args.function)


def _inlined_names(analysis: Analysis, entry_name: str) -> set[str]:
    """Names DWARF gives the helpers inlined into the entry's functions (for "did you
    mean"; the units are in the cache once `why` has looked through them)."""
    if not analysis.has_dwarf:
        return set()
    graph = analysis.graph(entry_name)
    from entrycheck.binary.dwarf import DwarfIndex

    index = DwarfIndex(Path(analysis.image))
    try:
        index.inlined_in({n.name: a for a, n in graph.nodes.items()})
    except EntrycheckError:
        return set()
    finally:
        index.close()
    return index.names()


def _trace(args: argparse.Namespace, image_path: Path) -> dict:
    kernel = args.kernel or (image_path if args.entry == "pvh" else None)
    if kernel is None:
        raise EntrycheckError("trace --entry native needs --kernel BZIMAGE (the vmlinuz)")
    if safeio.lstat(args.output, "trace output") is not None and not _is_trace(args.output):
        raise EntrycheckError(f"{safeio.shown(args.output)} exists and is not a trace file: "
                              "not overwriting")
    from entrycheck.binary.image import Image
    from entrycheck.trace import qemu

    image = Image(image_path)
    result = qemu.run_boot(args.entry, kernel, image, until=args.until, timeout=args.timeout)
    trace_files.write_trace(result, args.output)
    return {"format": queries.FORMAT, "command": "trace", "image": str(image_path),
            "build_id": image.build_id, "entry": args.entry, "until": args.until,
            "functions": len(result.functions), "seconds": result.seconds or 0.0,
            "output": str(args.output)}


def _analysis(args: argparse.Namespace, image: Path, defined: list[str], show,
              complete: bool = False) -> Analysis:
    """The image's analysis (the boot paths, or `complete`: everything reached); with
    --build-dir, joined with the compressed kernel's."""
    analysis = analyse(image, defined, cache_dir=args.cache_dir, progress=show,
                       complete=complete)
    _warn(analysis)
    tree = args.build_dir
    compressed = args.compressed or (tree / "arch/x86/boot/compressed/vmlinux" if tree else None)
    bz_path = args.bzimage or (tree / "arch/x86/boot/bzImage" if tree else None)
    if compressed is None:
        if bz_path is not None:
            raise EntrycheckError("--bzimage needs the compressed vmlinux too (--compressed)")
        return analysis
    if safeio.lstat(compressed, "the compressed vmlinux") is None:
        raise EntrycheckError(f"{safeio.shown(compressed)}: missing (build the bzImage target)")
    header = bzimage.parse(bz_path).entry_addresses() \
        if bz_path and safeio.lstat(bz_path, "the bzImage") is not None else None
    from entrycheck.splice import splice

    inner = analyse(compressed, cache_dir=args.cache_dir, progress=show, header=header,
                    complete=complete)
    _warn(inner)
    return splice(inner, analysis)


def _warn(analysis: Analysis) -> None:
    """What the image says that is off (a Xen note pointing nowhere, a descriptor table
    that is there but fits no layout...), on stderr once."""
    for warning in analysis.all_warnings():
        print(f"entrycheck: warning: {safeio.shown(analysis.image, 80)}: "
              f"{safeio.shown(warning, 180)}", file=sys.stderr)
    for table in analysis.special:
        if table.get("problem"):
            print(f"entrycheck: warning: {safeio.shown(analysis.image, 80)}: table "
                  f"{table['name']}: {safeio.shown(table['problem'], 180)}", file=sys.stderr)


def _check(args: argparse.Namespace, image_path: Path, show) -> dict:
    from entrycheck.check import evaluate, formats, rules

    fmt = args.format or ("json" if args.json else "text")
    if args.json and fmt != "json":
        raise EntrycheckError(f"--json asks for JSON, --format {fmt} for {fmt}: give one of them")
    rule_set = rules.load_rules(args.rules or builtin_rules(), args.define)
    known = {} if args.baseline is None else evaluate.read_baseline(args.baseline)
    whole = any(r.generic == "native_only_boot" for r in rule_set)  # needs the whole boot
    analysis = _analysis(args, image_path, args.define, show, complete=whole)
    _has_entries(analysis, "")
    head = evaluate.run(analysis, rule_set, args.cache_dir)
    findings, warnings = head.findings, [w for w in [head.dwarf_warning] if w]
    base = None
    if args.base is not None:
        base = analyse(args.base, args.define, cache_dir=args.cache_dir, progress=show,
                       complete=whole)
        _has_entries(base, "--base ")
        earlier = evaluate.run(base, rule_set, args.cache_dir)
        known = evaluate.merge_known(known, evaluate.known_from(earlier.findings))
        warnings += [f"base {args.base}: {earlier.dwarf_warning}"] if earlier.dwarf_warning else []
    written = None
    if args.write_baseline is not None:  # a set-up step: what it records is known from now on
        written = evaluate.baseline_json(findings)
        safeio.write_text(args.write_baseline, json.dumps(written, indent=1), "baseline")
        known = evaluate.merge_known(known, evaluate.known_from(findings))
    if args.rules_url is not None and not rules.is_uri(args.rules_url):
        raise EntrycheckError(f"--rules-url {safeio.shown(args.rules_url)}: not an absolute "
                              "http(s) URL")
    roots = [str(r).rstrip("/") or "/" for r in args.source_root] or list(head.source_roots)
    result = evaluate.report(analysis, rule_set, findings, base=base, known=known,
                             fail_on=args.fail_on, warnings=warnings, source_roots=roots,
                             rules_url=args.rules_url)
    if written is not None:
        result["baseline_written"] = {"path": str(args.write_baseline),
                                      "findings": sum(1 for f in written["findings"]
                                                      if not f.get("suppressed"))}
    result["command"] = "check"
    result["output_text"] = formats.FORMATTERS[fmt](result)
    if args.output is not None:
        safeio.write_text(args.output, result["output_text"])
        result["output_text"] = ""
    return result


def _crosscheck(args: argparse.Namespace, image_path: Path) -> dict:
    if args.sample < 1:
        raise EntrycheckError(f"--sample {args.sample}: give a number of functions, 1 or more")
    from entrycheck.binary.functions import FunctionTable
    from entrycheck.binary.image import Image

    image = Image(image_path)
    head = {"format": queries.FORMAT, "command": "crosscheck", "image": str(image_path),
            "build_id": image.build_id}
    if args.objdump:
        from entrycheck.crosscheck.with_objdump import compare

        return {**head, "against": "objdump", **compare(image).as_json()}
    from entrycheck.crosscheck.with_angr import crosscheck  # imports angr: seconds

    result = crosscheck(image, FunctionTable(image), args.functions or None,
                        sample=args.sample, seed=args.seed)
    return {**head, "against": "angr", **result.as_json()}


def _is_trace(path: Path) -> bool:
    try:
        trace_files.read_trace(path)
    except EntrycheckError:
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    """Run one command: exit 0, 1 for findings (check, validate, crosscheck) or a
    function `why` finds unreached, 2 for an error of any kind, always reported as one
    line."""
    try:
        return _main(argv)
    except KeyboardInterrupt:
        print("entrycheck: interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        print("entrycheck: error: out of memory (an input too large or malformed?)",
              file=sys.stderr)
        return 2
    except Exception as exc:  # a bug: still one line and exit 2, never 1 ("findings")
        print(f"entrycheck: error: internal error: {_describe(exc)}; please report it",
              file=sys.stderr)
        return 2


def _describe(exc: BaseException) -> str:
    """`Type: message (at module.py:line)` for the innermost frame in entrycheck."""
    where = ""
    for frame in traceback.extract_tb(exc.__traceback__):
        if "entrycheck" in frame.filename:
            where = f" (at {Path(frame.filename).name}:{frame.lineno})"
    return f"{type(exc).__name__}: {safeio.shown(exc, 160)}{where}"


def _json_text(result: dict) -> str:
    """The result as JSON: indented on a terminal, compact for programs (much faster for
    the tens of thousands of functions a whole-boot answer lists)."""
    if sys.stdout.isatty():
        return json.dumps(result, indent=1)
    return json.dumps(result, separators=(",", ":"))


def _main(argv: list[str] | None) -> int:
    if hasattr(sys.stdout, "reconfigure"):  # file names that are not UTF-8, printed back
        sys.stdout.reconfigure(errors="surrogateescape")
    args = _parse(argv)
    try:
        result = _run(args)
    except EntrycheckError as exc:  # one line under 300 characters, whatever it quotes
        print(f"entrycheck: error: {safeio.shown(exc, MAX_ERROR)}", file=sys.stderr)
        return 2
    try:
        if result["command"] == "check":
            if result["output_text"]:
                print(result["output_text"])
        else:
            print(_json_text(result) if args.json else render(result))
        sys.stdout.flush()
    except BrokenPipeError:  # `entrycheck ... | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    failed = (result["command"] == "validate" and result["missing"]) or (
        result["command"] == "crosscheck" and (result.get("mismatches") or any(
            d["reason"] == "unexplained" for d in result.get("disagreements", ())))) or (
        result["command"] == "check" and result["exit_code"]) or (
        result["command"] == "why" and not result["reached"])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
