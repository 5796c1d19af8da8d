"""Rules checked at load: every mistake is one `FILE:LINE: message` line and exit 2, before
any kernel is read; entry names, placeholders, RE2 patterns, bounded YAML (issues 12, 13)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from entrycheck.check.rules import compile_pattern, load_rules
from entrycheck.errors import EntrycheckError

HEAD = "id: X1\ntitle: t\nseverity: note\n"
MATCH = "match: {function: foo}\nrequire: {native_only: true}\n"


def load_error(tmp_path: Path, text: str | bytes, definitions=()) -> str:
    path = tmp_path / "r.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(EntrycheckError) as info:
        load_rules(path, definitions)
    message = str(info.value)
    assert "\n" not in message and len(message) < 300, message
    return message


@pytest.mark.parametrize(("text", "line", "fragment"), [
    (HEAD + "message: '{entri} x'\n" + MATCH, 4, "unknown placeholder {entri}"),
    (HEAD + "message: '{entry:999999999}'\n" + MATCH, 4, "no conversion or format spec"),
    (HEAD + "message: '{entry!r}'\n" + MATCH, 4, "no conversion or format spec"),
    (HEAD + "message: '{'\n" + MATCH, 4, "Single '{'"),
    (HEAD + "message: 'a }'\n" + MATCH, 4, "Single '}'"),
    (HEAD + "message: '{}'\n" + MATCH, 4, "unknown placeholder {}"),
    (HEAD + "message: '{entry.name}'\n" + MATCH, 4, "unknown placeholder {entry.name}"),
    (HEAD + "message: m\nmatch: {function: f}\nrequire:\n  reached_by_all: [native, xen_pv]\n",
     7, "unknown entry 'xen_pv' (did you mean xen-pv?)"),
    (HEAD + "message: m\nmatch: {function: f}\nrequire:\n  not_reached_by:\n    - pvhh\n",
     8, "unknown entry 'pvhh'"),
    (HEAD + "message: m\n" + MATCH + "allow:\n  xenpv: a reason\n", 8, "unknown entry 'xenpv'"),
    (HEAD + "message: m\nmatch: {function: f}\nrequire: {native_only: [xen-pv, nope]}\n", 6,
     "unknown entry 'nope'"),
    (HEAD + "message: m\nmatch: {function: '(a)\\1'}\nrequire: {native_only: true}\n", 5,
     "invalid escape sequence"),
    (HEAD + "message: m\nmatch: {function: 'a{1001}'}\nrequire: {native_only: true}\n", 5,
     "invalid repetition size"),
    (HEAD + "message: m\nmatch: {function: '(?=x)y'}\nrequire: {native_only: true}\n", 5,
     "bad regular expression"),
    (HEAD + "message: m\nmatch: {function: '" + "x" * 1001 + "'}\nrequire: {native_only: true}\n",
     5, "longer than 1000 characters"),
    ("id: X\xff\n".encode("latin-1"), 1, "not UTF-8 text (byte 0xff"),
    (HEAD + "message: m\n" + MATCH + "title: again\n", 7, "duplicate key 'title'"),
    ("? [a]\n: 1\n", 1, "a mapping key must be a plain string"),
    ("[" * 1000, 1, "nested deeper than 20 levels"),
    ("id: X1\nmessage: \"\\x01\"\n\x07\n", 3, "invalid YAML"),
    (HEAD + "message: m\n" + MATCH + "help_uri: notaurl\n", 7, "absolute http(s) URI"),
    (HEAD + "message: m\ngeneric: native_only_init\nallow_roots:\n  xen_pv:\n    f: r\n", 7,
     "unknown entry 'xen_pv' (did you mean xen-pv?)"),
    (HEAD + "message: m\ngeneric: native_only_init\nallow_roots:\n  xen-pv:\n    f: ''\n", 8,
     "allow_roots: xen-pv: f needs a reason"),
    (HEAD + "message: m\ngeneric: native_only_init\nallow_roots:\n  xen-pv: [f]\n", 7,
     "allow_roots: xen-pv maps names to reasons"),
    (HEAD + "message: m\ngeneric: native_only_init\nallow_roots: [xen-pv]\n", 6,
     "allow_roots maps entry names to {function: reason}"),
    (HEAD + "message: m\n" + MATCH + "allow_roots: {}\n", 7, "allow_roots goes with `generic`"),
    (HEAD + "message: m\n" + MATCH + "allow_points: {}\n", 7,
     "allow_points goes with `generic: native_only_boot`"),
    (HEAD + "message: m\ngeneric: native_only_init\nallow_points: {}\n", 6,
     "allow_points goes with `generic: native_only_boot`"),
    (HEAD + "message: 'at {point}'\n" + MATCH, 4,
     "placeholder {point} goes with `generic: native_only_boot`"),
    (HEAD + "message: 'at {point}'\ngeneric: native_only_init\n", 4,
     "placeholder {point} goes with `generic: native_only_boot`"),
])
def test_rule_mistakes_are_one_line(tmp_path, text, line, fragment):
    message = load_error(tmp_path, text)
    assert message.startswith(f"{tmp_path / 'r.yaml'}:{line}: "), message
    assert fragment in message, message


def test_alias_bomb(tmp_path):
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 12)]
    message = load_error(tmp_path, "\n".join(lines) + "\n")
    assert "more than 100 YAML aliases" in message


def test_user_defined_entries_may_be_named(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(HEAD + "message: m\nmatch: {function: f}\nrequire: {reached_by_all: [mine]}\n")
    assert "unknown entry 'mine'" in load_error(tmp_path, path.read_text())
    [rule] = load_rules(path, ["mine=startup_64@32"])
    assert rule.entries == ("mine",)


def test_patterns_are_linear_time():
    """The backtracking bombs of issue 13 compile and match a long string at once."""
    text = "a" * 100_000
    for pattern in ("(.*)*(.*)*(.*)*!", r"(\w|\w)*!", "a{99999999999}"):
        start = time.monotonic()
        assert compile_pattern(pattern).search(text) is None
        assert time.monotonic() - start < 1


def test_builtin_rules_load():
    from entrycheck.cli import builtin_rules

    rules = load_rules(builtin_rules())
    assert {r.id for r in rules} >= {"EC001", "EC002", "EC100"}


def cli(*argv: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "entrycheck.cli", *argv], capture_output=True,
                          text=True, timeout=timeout)


def assert_one_error(proc: subprocess.CompletedProcess, fragment: str) -> None:
    assert proc.returncode == 2, proc.stderr
    [line] = proc.stderr.splitlines()
    assert line.startswith("entrycheck: error: ") and fragment in line and len(line) < 300
    assert proc.stdout == ""


def test_placeholder_typo_is_exit_2_not_a_traceback(tmp_path, sample):
    """Issue 12: `{entri}` was a KeyError and exit 1 when a finding was made."""
    rules = tmp_path / "r.yaml"
    rules.write_text(HEAD + "message: '{entri} x'\nmatch: {function: kasan_early_init}\n"
                     "require: {native_only: true}\n")
    assert_one_error(cli("check", str(sample), "--rules", str(rules)), "r.yaml:4: unknown")


def test_define_makes_an_entry_name_known(tmp_path, sample):
    rules = tmp_path / "r.yaml"
    rules.write_text(HEAD + "message: m\nmatch: {function: start_kernel}\n"
                     "require: {reached_by_all: [mine]}\n")
    assert_one_error(cli("check", str(sample), "--rules", str(rules)), "unknown entry 'mine'")
    proc = cli("check", str(sample), "--rules", str(rules), "--define", "mine=startup_64")
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("special", ["/dev/zero", "fifo"])
def test_special_files_refused_without_reading(tmp_path, sample, special):
    path = Path(special)
    if special == "fifo":
        path = tmp_path / "rules.yaml"
        os.mkfifo(path)
    assert_one_error(cli("check", str(sample), "--rules", str(path), timeout=30),
                     "not a regular file")


def test_oversized_rule_file(tmp_path, sample):
    big = tmp_path / "big.yaml"
    big.write_text("# " + "x" * (1 << 20) + "\n")
    assert_one_error(cli("check", str(sample), "--rules", str(big)), "larger than")


def test_long_values_keep_the_line_short(tmp_path):
    long = "n" * 5000
    for text in (HEAD + f"message: '{{{long}}}'\n" + MATCH,
                 HEAD + f"message: m\nmatch: {{function: '(a)\\1{long[:900]}'}}\n"
                        "require: {native_only: true}\n",
                 HEAD + "message: m\nmatch: {function: f}\n"
                        f"require: {{not_reached_by: [{long}]}}\n",
                 HEAD + f"message: m\n{long}: 1\n" + MATCH):
        load_error(tmp_path, text)


def test_mutated_builtin_rules_never_crash(tmp_path):
    """A few hundred random byte mutations of the built-in rule files: each loads or is
    one EntrycheckError line (no other exception, nothing unbounded)."""
    import random

    rng = random.Random(12)
    sources = [p.read_bytes() for p in sorted((Path(__file__).parents[2] / "rules").glob("*.yaml"))]
    alphabet = b"{}[]:-&*!|>'\"\\#%@`?, \n\t\x00\xff0123abc"
    path = tmp_path / "m.yaml"
    outcomes = {"loaded": 0, "refused": 0}
    for _ in range(300):
        data = bytearray(rng.choice(sources))
        for _ in range(rng.randint(1, 4)):
            at = rng.randrange(len(data))
            op = rng.randrange(3)
            if op == 0:
                data[at] = rng.choice(alphabet)
            elif op == 1:
                data[at:at] = bytes(rng.choice(alphabet) for _ in range(rng.randint(1, 8)))
            else:
                del data[at : at + rng.randint(1, 20)]
        path.write_bytes(bytes(data))
        try:
            load_rules(path)
            outcomes["loaded"] += 1
        except EntrycheckError as exc:
            assert "\n" not in str(exc) and len(str(exc)) <= 280
            outcomes["refused"] += 1
    assert outcomes["refused"] > 50 and outcomes["loaded"] > 10


def test_every_generic_kind_is_evaluated():
    from entrycheck.check import evaluate, rules

    assert sorted(evaluate.GENERIC_KINDS) == sorted(rules.GENERIC)
