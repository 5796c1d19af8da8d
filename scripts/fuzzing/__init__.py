"""Input families of the fuzz campaign (scripts/fuzz.py): each generator makes one
malformed input, seeded, in a folder of its own, and says how to run and check it."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

from fuzzing.binaries import gen_build_dir, gen_bzimage, gen_cache, gen_elf
from fuzzing.common import Case, Corpus, make_corpus
from fuzzing.documents import gen_baseline, gen_cli, gen_output, gen_rules, gen_trace

FAMILIES: dict[str, Callable[[random.Random, Path, Corpus], Case]] = {
    "elf": gen_elf, "bzimage": gen_bzimage, "build-dir": gen_build_dir, "rules": gen_rules,
    "trace": gen_trace, "baseline": gen_baseline, "cli": gen_cli, "cache": gen_cache,
    "output": gen_output,
}
WEIGHTS = {"elf": 4, "bzimage": 1, "build-dir": 1, "rules": 1.5, "trace": 1, "baseline": 1,
           "cli": 1, "cache": 1, "output": 1}




def make_case(family: str, index: int, seed: int, work: Path, corpus: Corpus) -> Case:
    """Case `index` of a family under a seed: always the same input."""
    rng = random.Random(f"{seed}:{family}:{index}")
    return FAMILIES[family](rng, work, corpus)


__all__ = ["FAMILIES", "WEIGHTS", "Case", "Corpus", "make_case", "make_corpus"]
