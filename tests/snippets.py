"""Tiny x86-64 ELFs assembled from GNU as source for the tests (binutils' as and ld).

`assemble(source)` links the source at the kernel's text address (0xffffffff81000000):
`.text` first, then `.altinstr_aux` and `.altinstr_replacement`, `.data` on the next page,
other sections where ld puts orphans. The result gives the ELF, its labels and, for
decoder tests, a stub of what decoding needs from an image (`view()`).
"""

from __future__ import annotations

import atexit
import shutil
import subprocess
import tempfile
from functools import cache
from pathlib import Path

import pytest

from entrycheck.binary.image import Image
from entrycheck.decode.dataflow import ImageView
from entrycheck.model import Function

BASE = 0xFFFFFFFF81000000
_SCRIPT = """
SECTIONS {
  . = %#x;
  .text : { *(.text) }
  .altinstr_aux : { *(.altinstr_aux) }
  .altinstr_replacement : { *(.altinstr_replacement) }
  . = ALIGN(0x1000);
  .data : { *(.data) *(.rodata) }
}
"""


def have_binutils() -> bool:
    return all(shutil.which(t) for t in ("as", "ld"))


needs_binutils = pytest.mark.skipif(not have_binutils(), reason="needs binutils (as, ld)")


class Snippet:
    """An assembled and linked snippet: its ELF, labels and code."""

    def __init__(self, path: Path):
        self.path = path
        self.image = Image(path)
        self.labels = {s.name: s.value for s in self.image.symbols if s.name}

    def __getitem__(self, label: str) -> int:
        return self.labels[label]

    def function(self, label: str, end: str) -> Function:
        """The code from `label` to `end` as a Function of .text."""
        return Function(label, self[label], self[end], ".text")

    def view(self, functions: list[Function], slots: dict[int, int] | None = None) -> ImageView:
        """What FunctionDecoder needs: the snippet's bytes, `functions` as the function
        table, data slots holding `slots` (address -> code address), everything outside
        code sections counting as data."""
        image, slots = self.image, slots or {}

        def code_target(value: int | None) -> int | None:
            return value if value is not None and image.is_code(value) else None

        def function_at(address: int) -> Function | None:
            return next((f for f in functions if f.start <= address < f.end), None)

        def starting_at(address: int) -> Function | None:
            return next((f for f in functions if f.start == address), None)

        def is_data(address: int) -> bool:
            section = image.section_at(address)
            return section is not None and not section.executable

        return ImageView(image.read, code_target, slots.get, slots.get, is_data, function_at,
                         starting_at)


@cache
def _assemble(source: str) -> Path:
    work = Path(tempfile.mkdtemp(prefix="entrycheck-snippet-"))
    atexit.register(shutil.rmtree, work, True)
    (work / "s.s").write_text(source)
    (work / "s.lds").write_text(_SCRIPT % BASE)
    for cmd in (["as", "--64", "-o", "s.o", "s.s"],
                ["ld", "-m", "elf_x86_64", "-T", "s.lds", "-e", "0", "--build-id=none",
                 "-z", "noexecstack", "-o", "s.elf", "s.o"]):
        done = subprocess.run(cmd, cwd=work, capture_output=True, text=True)
        assert done.returncode == 0, f"{' '.join(cmd)}: {done.stderr}"
    return work / "s.elf"


def assemble(source: str) -> Snippet:
    """The snippet linked at BASE (skips the test without binutils)."""
    if not have_binutils():
        pytest.skip("needs binutils (as, ld)")
    return Snippet(_assemble(source))
