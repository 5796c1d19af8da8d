"""Instruction boundaries of the decoder against `objdump -d`, over every sized function.

Both sides sweep each function linearly from its symbol, restarting at every symbol inside
it, as objdump does. Where they disagree, the first differing address is classified:
- `objdump-unknown`: objdump prints `(bad)` there (an instruction binutils does not know,
  such as LKGS before binutils 2.41): its later boundaries are out of sync, not ours;
- `cut-by-symbol`: bytes cut by a symbol inside them (srso_untrain_ret's `movabs` holds
  srso_safe_ret): data between instructions, which objdump prints as `rex.W` / `.byte`;
- `fwait-prefix`: objdump prints `fwait` and the x87 instruction after it as one (`finit`);
- `unexplained`: anything else (a decoder error to look at).
"""

from __future__ import annotations

import bisect
import itertools
import re
import shutil
import subprocess
import time
from array import array
from dataclasses import asdict, dataclass, field

from entrycheck.binary.image import Image
from entrycheck.decode import decoder as dec
from entrycheck.errors import EntrycheckError

_LINE = re.compile(r"^\s*([0-9a-f]+):\t(.*)$")
REASONS = ("objdump-unknown", "cut-by-symbol", "fwait-prefix", "unexplained")


@dataclass
class Disagreement:
    """One function whose boundaries differ, where and why."""

    function: str
    address: str
    first: str
    reason: str
    ours: str = ""
    objdump: str = ""


@dataclass
class Boundaries:
    """The outcome over all sized functions."""

    functions: int
    agreeing: int
    instructions: int
    seconds_objdump: float
    seconds_decoder: float
    disagreements: list[Disagreement] = field(default_factory=list)

    def as_json(self) -> dict:
        by_reason = {r: sum(1 for d in self.disagreements if d.reason == r) for r in REASONS}
        return {"functions": self.functions, "agreeing": self.agreeing,
                "instructions": self.instructions, "by_reason": by_reason,
                "seconds_objdump": round(self.seconds_objdump, 2),
                "seconds_decoder": round(self.seconds_decoder, 2),
                "disagreements": [asdict(d) for d in self.disagreements]}


def _objdump_starts(image: Image) -> tuple[array, float]:
    tool = shutil.which("objdump")
    if tool is None:
        raise EntrycheckError("crosscheck --objdump: objdump not found (Debian's binutils)")
    t = time.perf_counter()
    cmd = [tool, "-d", "-w", "--no-show-raw-insn", str(image.path)]
    starts = array("Q")
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                          errors="replace") as proc:
        for line in proc.stdout:
            m = _LINE.match(line)
            if m:
                starts.append(int(m.group(1), 16))
    if proc.returncode:
        raise EntrycheckError(f"crosscheck --objdump: objdump failed on {image.path}")
    return array("Q", sorted(set(starts))), time.perf_counter() - t


def _objdump_text(image: Image, start: int, end: int) -> dict[int, str]:
    out = subprocess.run(["objdump", "-d", "-w", "--no-show-raw-insn",
                          f"--start-address={start:#x}", f"--stop-address={end:#x}",
                          str(image.path)], capture_output=True, text=True, errors="replace")
    texts = {}
    for line in out.stdout.splitlines():
        m = _LINE.match(line)
        if m:
            texts[int(m.group(1), 16)] = m.group(2).strip()
    return texts


def compare(image: Image) -> Boundaries:
    """Boundaries of every sized FUNC symbol in executable sections, ours vs objdump's."""
    theirs_all, seconds_objdump = _objdump_starts(image)
    t = time.perf_counter()
    sections = image.sections
    code = [s for s in image.symbols if 0 < s.section < len(sections)
            and sections[s.section].executable]
    cuts = sorted({s.value for s in code})
    result = Boundaries(0, 0, 0, seconds_objdump, 0.0)
    mode = image.bits
    for sym in code:
        if sym.type != "FUNC" or not sym.size:
            continue
        start, end = sym.value, sym.value + sym.size
        result.functions += 1
        inner = cuts[bisect.bisect_right(cuts, start) : bisect.bisect_left(cuts, end)]
        ours: list[int] = []
        for a, b in itertools.pairwise([start, *inner, end]):
            data = image.read(a, b - a)
            if data:
                ours += dec.sweep(mode, bytes(data), a)
        result.instructions += len(ours)
        lo, hi = bisect.bisect_left(theirs_all, start), bisect.bisect_left(theirs_all, end)
        theirs = theirs_all[lo:hi].tolist()
        if ours == theirs:
            result.agreeing += 1
            continue
        first = min(set(ours) ^ set(theirs))
        result.disagreements.append(_classify(image, sym.name, start, end, first, inner))
    result.seconds_decoder = time.perf_counter() - t
    return result


def _classify(image: Image, name: str, start: int, end: int, first: int,
              cuts: list[int]) -> Disagreement:
    texts = _objdump_text(image, start, end)
    data = bytes(image.read(start, end - start) or b"")
    ours = {ins.ip: dec.text(ins) for ins in dec.decoder(image.bits, data, start)}
    around = sorted(a for a in texts if a <= first)
    at = around[-1] if around else first
    theirs_text = texts.get(at, "")
    ours_text = ours.get(max((a for a in ours if a <= first), default=start), "")
    if "(bad)" in theirs_text or "(bad)" in " ".join(texts.get(a, "") for a in around[-2:]):
        reason = "objdump-unknown"
    elif any(abs(c - first) <= 15 for c in cuts) or theirs_text.startswith((".byte", "rex")):
        reason = "cut-by-symbol"
    elif ours_text.startswith("fwait") or theirs_text.startswith(("finit", "fclex", "fstsw",
                                                                   "fsave", "fstenv")):
        reason = "fwait-prefix"
    else:
        reason = "unexplained"
    return Disagreement(name, f"{start:#x}", f"{first:#x}", reason, ours_text, theirs_text)
