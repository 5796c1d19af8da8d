"""A progress bar for long steps: shown on a terminal (stderr), silent otherwise."""

from __future__ import annotations

import sys
from collections.abc import Callable


def progress_bar(enabled: bool = True) -> Callable[[str, int, int], None] | None:
    """A callback `(step, done, total)`, or None when stderr is not a terminal."""
    if not enabled or not sys.stderr.isatty():
        return None
    from rich.console import Console  # only on a terminal: rich takes a while to import
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    # rich's default console is stdout's: the bar would put \r and \n into a redirected stdout
    bar = Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(),
                   transient=True, console=Console(file=sys.stderr))
    task = None

    def update(step: str, done: int, total: int) -> None:
        nonlocal task
        if task is None:
            bar.start()
            task = bar.add_task(step, total=total)
        bar.update(task, description=step, completed=done)
        if done >= total:
            bar.stop()

    return update
