"""Fuzz families of documents and places: rule YAML, trace and baseline JSON, output
targets (check --output, --write-baseline, report -o) and command-line arguments."""

from __future__ import annotations

import json
import os
import random
import stat
import sys
from pathlib import Path

from fuzzing.common import SAMPLE, Case, Corpus, all_checks, fifo, flip, no_temp_left, pick, special

# -- rules --------------------------------------------------------------------------------

BAD_MESSAGES = ("'{'", "'{}'", "'{nosuch}'", "'{entry:999999999}'", "'{entry!r}'",
                "'{entry.__class__}'", "'{0}'", "'{entry[0]}'", "'}'", "'{{'",
                "'{entry:>{symbol}}'")
BAD_REGEXES = ("'a{99999999999}'", "'(.*)*(.*)*(.*)*!'", "'(\\w|\\w)*!'", "'(?P<x>'",
               "'(a)\\1'", "'(?=a)'", "'" + "(" * 500 + "a" + ")" * 500 + "'",
               "'" + "a" * 5000 + "'", "'[z-a]'", "'\\'", "'((a{1000}){1000}){1000}'",
               "'(?i)" + "a?" * 300 + "a" * 300 + "'")


def gen_rules(rng: random.Random, work: Path, corpus: Corpus) -> Case:
    _, text = pick(rng, sorted(corpus.rules.items()))
    lines = text.splitlines(keepends=True)
    kind = pick(rng, ("non-utf8", "list-key", "deep", "aliases", "message", "message",
                      "regex", "regex", "types", "dup", "lines", "chars", "tags", "empty",
                      "huge", "special", "folder"))
    raw: bytes | None = None
    if kind == "non-utf8":
        at = rng.randrange(len(text))
        raw = text[:at].encode() + pick(rng, (b"\xff", b"\xc3", b"\x80\x63", b"\xed\xa0\x80")) \
            + text[at:].encode()
    elif kind == "list-key":
        text = pick(rng, ("? [a]\n: 1\n", "- ? [a]\n  : 1\n", "- {[1]: 2}\n",
                          "- id: X\n  ? {a: 1}\n  : 2\n", text + "- ? [x]\n  : y\n"))
    elif kind == "deep":
        n = pick(rng, (25, 1000, 100000))
        text = pick(rng, ("[" * n, "- " + "[" * n + "]" * n, "{a: " * n + "1" + "}" * n,
                          "- " * n + "x"))
    elif kind == "aliases":
        bomb = ["a: &a [x, x, x, x, x, x, x, x, x]"]
        for i in range(1, 12):
            bomb.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}" if i > 1 else "*a"] * 9)
                        + "]")
        text = "- id: X\n  " + "\n  ".join(bomb) + "\n"
    elif kind in ("message", "regex"):
        bad = pick(rng, BAD_MESSAGES if kind == "message" else BAD_REGEXES)
        key = "message" if kind == "message" else pick(rng, ("function", "inlined", "data",
                                                             "instruction"))
        idx = [i for i, line in enumerate(lines) if line.strip().startswith(key + ":")]
        if idx:
            i = pick(rng, idx)
            indent = lines[i][: len(lines[i]) - len(lines[i].lstrip())]
            lines[i] = f"{indent}{key}: {bad}\n"
        else:
            lines.append(f"- id: X1\n  title: t\n  severity: error\n  message: m\n"
                         f"  match: [{{function: {bad}}}]\n  require: {{reached_by_all: []}}\n"
                         if kind == "regex" else f"- id: X1\n  message: {bad}\n")
        text = "".join(lines)
    elif kind == "types":
        idx = [i for i, line in enumerate(lines) if ":" in line and not line.lstrip()
               .startswith("#")]
        if idx:
            i = pick(rng, idx)
            head = lines[i].split(":", 1)[0]
            lines[i] = head + ": " + pick(rng, ("[1]", "{a: 1}", "12", "null", "-1", "1e999",
                                                "!!binary aGVsbG8=", "'" + "x" * 100000 + "'",
                                                "[[[[]]]]", "2001-01-01", "~", ".inf")) + "\n"
        text = "".join(lines)
    elif kind == "dup":
        text = text + text
    elif kind == "lines":
        for _ in range(rng.randint(1, 4)):
            if lines:
                i = rng.randrange(len(lines))
                op = rng.randrange(3)
                if op == 0:
                    del lines[i]
                elif op == 1:
                    lines.insert(rng.randrange(len(lines) + 1), lines[i])
                else:
                    lines[i] = "\t" + lines[i]
        text = "".join(lines)
    elif kind == "chars":
        chars = list(text)
        for _ in range(rng.randint(1, 8)):
            chars[rng.randrange(len(chars))] = pick(rng, list(":-[]{}&*!|>'\"%@`#\t\n\0\x85"))
        text = "".join(chars)
    elif kind == "tags":
        text = pick(rng, ("- !!python/object/apply:os.system ['touch PWNED']\n",
                          "!!python/name:os.system\n", "- id: !!set {a, b}\n",
                          "- &x id: *x\n", "%YAML 9.9\n---\n- 1\n", "--- !foo\n- 1\n"))
    elif kind == "empty":
        text = pick(rng, ("", "---\n", "\n\n", "# nothing\n", "null\n", "[]\n", "{}\n",
                          "--- 1\n--- 2\n", "...\n"))
    elif kind == "huge":
        text = text + "# " + "x" * (2 << 20) + "\n"
    rules_path = work / "rules.yaml"
    if kind == "special":
        sub, rules_path = special(rng, work, "rules.yaml")
        kind = f"special {sub}"
    elif kind == "folder":
        folder = work / "rules"
        folder.mkdir()
        what = pick(rng, ("fifo", "zero", "none", "dir"))
        if what == "fifo":
            fifo(folder / "a.yaml")
        elif what == "zero":
            (folder / "a.yaml").symlink_to("/dev/zero")
        elif what == "dir":
            (folder / "a.yaml").mkdir()
        (folder / "b.yaml").write_text(text)
        rules_path = folder
        kind = f"folder {what}"
    elif raw is not None:
        rules_path.write_bytes(raw)
    else:
        rules_path.write_text(text)
    cmd = ["check", str(SAMPLE)] if rng.random() < 0.85 else ["report", str(SAMPLE), "-o",
                                                              "out"]
    return Case(f"rules/{kind.split(' ')[0]}", [*cmd, "--rules", str(rules_path)],
                check=lambda w: "PWNED exists" if (w / "PWNED").exists() else None)


# -- JSON documents (traces, baselines) -----------------------------------------------------


def random_value(rng: random.Random):
    return pick(rng, (None, True, 0, -1, 1 << 70, 1.5, float("inf"), "", "x" * 100000,
                      "\x00\ud800", [], {}, [1, 2], {"a": 1}, "0xzz", "-0x10", 10 ** 4300))


def mutate_json(rng: random.Random, doc):
    """The document with one value somewhere replaced, deleted or duplicated."""
    doc = json.loads(json.dumps(doc))
    node, path = doc, []
    while isinstance(node, (dict, list)) and node and rng.random() < 0.7:
        key = pick(rng, sorted(node)) if isinstance(node, dict) else rng.randrange(len(node))
        path.append((node, key))
        node = node[key]
    if not path:
        return random_value(rng)
    parent, key = path[-1]
    if rng.random() < 0.2:
        del parent[key]
    else:
        parent[key] = random_value(rng)
    return doc


def dump_json(value) -> str:
    """JSON text, with integers past Python's 4,300-digit default written out too."""
    limit = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(0)
    try:
        return json.dumps(value)
    finally:
        sys.set_int_max_str_digits(limit)


def json_bytes(rng: random.Random, doc) -> tuple[str, bytes]:
    kind = pick(rng, ("value", "value", "value", "shape", "deep", "non-utf8", "syntax",
                      "numbers", "names"))
    if kind == "value":
        try:
            return kind, dump_json(mutate_json(rng, doc)).encode()
        except (ValueError, OverflowError):  # NaN and infinities are written, so: rare
            return kind, b"{}"
    if kind == "shape":
        return kind, pick(rng, (b"[]", b"{}", b"null", b"1", b'"x"', b"", b" ", b"[{}]",
                                b'{"format": []}', b'{"format": {}}'))
    if kind == "deep":
        n = pick(rng, (100, 100000, 1000000))
        return kind, pick(rng, (b"[" * n, b"[" * n + b"]" * n, b'{"a":' * n + b"1" + b"}" * n))
    if kind == "non-utf8":
        text = json.dumps(doc).encode()
        at = rng.randrange(len(text))
        return kind, text[:at] + b"\xff\xfe" + text[at:] + (b" " * (1 << 20)
                                                           if rng.random() < 0.3 else b"")
    if kind == "syntax":
        text = bytearray(json.dumps(doc).encode())
        flip(rng, text, 0, len(text), rng.randint(1, 4))
        return kind, bytes(text)
    if kind == "numbers":
        return kind, json.dumps(doc).replace("0", "1" * 5000, 1).replace("false", "NaN", 1) \
            .encode()
    out = json.loads(json.dumps(doc))
    for item in out.get("functions") or out.get("findings") or []:
        key = "name" if "name" in item else "fingerprint"
        item[key] = pick(rng, (1, None, ["x"], "", "a" * 100000, 1.5, {"x": 1}))
    return kind, json.dumps(out).encode()


def gen_trace(rng: random.Random, work: Path, corpus: Corpus) -> Case:
    kind, data = json_bytes(rng, corpus.trace)
    path = work / "trace.json"
    if rng.random() < 0.08:
        sub, path = special(rng, work, "trace.json")
        kind = f"special {sub}"
    else:
        path.write_bytes(data)
    if rng.random() < 0.6:
        argv = ["validate", str(SAMPLE), "--entry", "pvh", "--trace", str(path)]
    else:  # the mutated file as the entry's trace or as the reference's
        ref = work / "other.json"
        if rng.random() < 0.5:
            ref.write_text(json.dumps(corpus.native_trace))
            pair = ["--trace", str(path), "--reference-trace", str(ref)]
        else:
            ref.write_text(json.dumps(corpus.trace))
            pair = ["--trace", str(ref), "--reference-trace", str(path)]
        argv = ["skip", str(SAMPLE), "--entry", "pvh", "--against", "native", *pair]
    return Case(f"trace/{kind.split(' ')[0]}", argv)


def gen_baseline(rng: random.Random, work: Path, corpus: Corpus) -> Case:
    if rng.random() < 0.3:  # where --write-baseline writes
        kind, target, check = output_target(rng, work, "baseline.json")
        return Case(f"baseline/write-{kind}", ["check", str(SAMPLE), "--write-baseline",
                                               str(target)], check=check)
    kind, data = json_bytes(rng, corpus.baseline)
    path = work / "baseline.json"
    if rng.random() < 0.1:
        sub, path = special(rng, work, "baseline.json")
        kind = f"special {sub}"
    else:
        path.write_bytes(data)
    return Case(f"baseline/{kind.split(' ')[0]}", ["check", str(SAMPLE), "--baseline",
                                                   str(path)])


# -- outputs ------------------------------------------------------------------------------


def output_target(rng: random.Random, work: Path, name: str):
    """A place to write a file (--output, --write-baseline) and the check of what is left."""
    target = work / name
    kind = pick(rng, ("new", "existing-0640", "symlink", "fifo", "folder", "device",
                      "under-file", "read-only", "dangling", "long-name", "newline"))
    checks = [no_temp_left(work)]
    if kind == "new":
        def check(w: Path) -> str | None:
            if not target.is_file():
                return None
            mode = stat.S_IMODE(target.stat().st_mode)
            if mode != 0o644:
                return f"new file mode {mode:o}, not 644 under umask 022"
            if not target.read_bytes().endswith(b"\n"):
                return "no final newline"
            return None
        checks.append(check)
    elif kind == "existing-0640":
        target.write_text("old\n")
        target.chmod(0o640)
        checks.append(lambda w: None if stat.S_IMODE(target.stat().st_mode) == 0o640 else
                      f"mode changed to {stat.S_IMODE(target.stat().st_mode):o}")
    elif kind in ("symlink", "dangling"):
        real = work / "real.txt"
        if kind == "symlink":
            real.write_text("keep\n")
        target.symlink_to(real)
        checks.append(lambda w: None if target.is_symlink() else "symlink replaced")
        if kind == "symlink":
            checks.append(lambda w: None if real.read_text() == "keep\n" else
                          "symlink target written")
    elif kind == "fifo":
        fifo(target)
        checks.append(lambda w: None if stat.S_ISFIFO(os.lstat(target).st_mode) else
                      "FIFO replaced")
    elif kind == "folder":
        target.mkdir()
        checks.append(lambda w: None if target.is_dir() else "folder replaced")
    elif kind == "device":
        target.symlink_to("/dev/null")
        checks.append(lambda w: None if target.is_symlink() else "device link replaced")
    elif kind == "under-file":
        (work / "afile").write_text("x\n")
        target = work / "afile" / "sub"
    elif kind == "read-only":
        ro = work / "ro"
        ro.mkdir()
        ro.chmod(0o555)
        target = ro / name
    elif kind == "long-name":
        target = work / ("n" * 100000)
    elif kind == "newline":
        target = work / "a\nb\rc\x1b[31m"
    return kind, target, all_checks(*checks)


def gen_output(rng: random.Random, work: Path, corpus: Corpus) -> Case:
    if rng.random() < 0.35:
        kind, target, check = output_target(rng, work, "out.txt")
        fmt = pick(rng, ("text", "json", "sarif", "junit"))
        return Case(f"output/check-{kind}", ["check", str(SAMPLE), "--format", fmt,
                                             "--output", str(target)], check=check)
    out = work / "report"
    foreign = None
    kind = pick(rng, ("foreign", "foreign-force", "forged-marker", "forged-marker-force",
                      "dot-force", "previous", "marker-special", "under-file", "read-only",
                      "symlink", "fifo", "nested-foreign", "marker-garbage", "new"))
    force = kind.endswith("-force") or (kind != "new" and rng.random() < 0.4)
    if kind in ("foreign", "foreign-force", "nested-foreign", "forged-marker",
                "forged-marker-force", "marker-special", "marker-garbage", "dot-force",
                "previous"):
        out.mkdir()
        if kind == "nested-foreign":
            (out / "graphs").mkdir()
            foreign = out / "graphs" / "mine.svg"
        elif kind == "previous":
            foreign = None
        else:
            foreign = out / pick(rng, ("notes.txt", "index.html", "report.json", ".git"))
        if foreign is not None:
            foreign.write_text("the user's\n")
        if kind.startswith("forged-marker"):
            files = [str(foreign.relative_to(out))] if foreign else []
            (out / ".entrycheck-report").write_text(json.dumps(
                {"format": "entrycheck-report/1", "files": [*files, "index.html"]}))
        elif kind == "marker-special":
            (out / ".entrycheck-report").symlink_to(pick(rng, ("/dev/zero", "/etc/passwd")))
        elif kind == "marker-garbage":
            (out / ".entrycheck-report").write_bytes(pick(rng, (b"[" * 100000, b"\xff",
                                                                b'{"format": 1}')))
        elif kind == "previous":
            (out / "index.html").write_text("old report\n")
            (out / ".entrycheck-report").write_text(json.dumps(
                {"format": "entrycheck-report/1", "files": ["index.html"]}))
    elif kind == "under-file":
        (work / "afile").write_text("x\n")
        out = work / "afile" / "sub"
    elif kind == "read-only":
        ro = work / "ro"
        ro.mkdir()
        ro.chmod(0o555)
        out = ro / "report"
    elif kind == "symlink":
        (work / "elsewhere").mkdir()
        out.symlink_to(work / "elsewhere")
    elif kind == "fifo":
        fifo(out)
    if kind == "dot-force":
        out_arg, cwd_rel = ".", out
    else:
        out_arg, cwd_rel = str(out), None
    argv = ["report", str(SAMPLE), "-o", out_arg, *(["--force"] if force else [])]

    def check(w: Path) -> str | None:
        if foreign is not None and (not foreign.exists() or
                                    foreign.read_text() != "the user's\n"):
            return f"foreign file {foreign.name} lost or replaced"
        return no_temp_left(w, w / "report")(w)
    case = Case(f"output/report-{kind}{'-force' if force and 'force' not in kind else ''}",
                argv, check=check)
    if cwd_rel is not None:
        case.env["_CWD"] = str(cwd_rel)
    return case


# -- CLI arguments --------------------------------------------------------------------------

LONG = "x" * 100000


def gen_cli(rng: random.Random, work: Path, corpus: Corpus) -> Case:
    s = str(SAMPLE)
    weird = pick(rng, (LONG, "\udcff\udcfe", "a\nb", "\x1b[2J", "", "-", "=", "@", "%s%n",
                       "{entry}", "../" * 50, "/", "/dev/zero", "/proc/self/mem",
                       "é" * 1000, "x=y@32", "x=" + LONG, LONG + "=y"))
    choices = (
        ["entries", weird], ["reach", s, "--entry", weird], ["skip", s, "--entry", "pvh",
                                                             "--against", weird],
        ["why", s, "--entry", "pvh", weird], ["why", s, "--entry", weird, "start_kernel"],
        ["reach", s, "--entry", "pvh", "--define", weird], ["check", s, "--rules", weird],
        ["check", s, "--baseline", weird], ["check", s, "--base", weird],
        ["check", s, "--rules-url", weird], ["check", s, "--source-root", weird],
        ["check", s, "--fail-on", weird], ["check", s, "--format", weird],
        ["entries", s, "--cache-dir", weird], ["validate", s, "--entry", "pvh", "--trace",
                                               weird],
        ["crosscheck", s, "--sample", pick(rng, ("-1", "0", "99999999999999", "x"))],
        ["crosscheck", weird], ["report", s, "-o", weird], ["entries", s, weird],
        [weird], ["entries", "--" + weird], ["reach", s, "--entry", "pvh", "--scope", weird],
        ["trace", s, "--entry", "native", "-o", str(work / "t.json")],
        ["trace", s, "--entry", weird, "-o", str(work / "t.json")],
        ["entries", s, "--bzimage", weird], ["entries", s, "--compressed", weird],
        ["entries", s, "--build-dir", weird],
        ["entries", s, "--cache-dir", pick(rng, ("/dev/null", str(work / "cachefile"),
                                                 "/proc", str(work / "ro")))],
        ["why", s, "--entry", "pvh", "x86_64_start_kernel", "extra", "words"],
    )
    (work / "cachefile").write_text("x\n")
    (work / "ro").mkdir()
    (work / "ro").chmod(0o555)
    argv = list(pick(rng, choices))
    label = argv[0] if argv[0] != weird else "command"
    return Case(f"cli/{label[:20]}", argv)
