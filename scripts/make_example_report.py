"""Regenerate reports/sample: the HTML report of the bundled sample kernel (`make report`)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from entrycheck.analysis import analyse
from entrycheck.cli import sample_image
from entrycheck.errors import EntrycheckError
from entrycheck.report import summary_lines, write_report

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "reports" / "sample"


def main() -> int:
    """Analyse the sample (no cache: the example shows this checkout's code) and write it."""
    os.chdir(ROOT)  # the report names the image relative to the checkout
    image = Path(os.path.relpath(sample_image(), ROOT))
    try:
        os.environ["ENTRYCHECK_NO_CACHE"] = "1"
        summary = write_report(analyse(image), OUTPUT)
    except EntrycheckError as exc:
        print(f"make_example_report: error: {exc}", file=sys.stderr)
        return 2
    print("\n".join(summary_lines(summary)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
