"""A progress bar for long jobs, on a terminal only: scripts and log files get plain lines."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager


@contextmanager
def byte_progress(total: int, label: str) -> Iterator[Callable[[int], None]]:
    """Yield advance(n_bytes); draws a bar on stderr when it is a terminal, else nothing."""
    if total <= 0 or not sys.stderr.isatty():
        yield lambda _done: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn(label), BarColumn(), DownloadColumn(), TimeRemainingColumn())
    # Lines for a terminal are drawn above the bar; lines for a file or a pipe go there untouched.
    with Progress(*columns, console=Console(file=sys.stderr), transient=True,
                  redirect_stdout=sys.stdout.isatty()) as progress:
        task = progress.add_task(label, total=total)
        yield lambda done: progress.advance(task, done)
