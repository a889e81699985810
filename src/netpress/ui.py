"""Console output: tables and progress bars for people on stderr, JSON on stdout."""

from __future__ import annotations

import sys
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

err_console = Console(stderr=True)
out_console = Console(width=None if sys.stdout.isatty() else 140)

_quiet = False


def set_quiet(flag: bool) -> None:
    """Silence progress bars (e.g. under --json or in tests)."""
    global _quiet
    _quiet = flag


@contextmanager
def progress(description: str, total: int):
    """A progress bar on stderr; yields ``advance(n=1, **fields)``.

    Example:
        >>> with progress("work", 3) as advance:
        ...     for _ in range(3):
        ...         advance()
    """
    if _quiet or not sys.stderr.isatty():
        yield lambda n=1, **kw: None
        return
    bar = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    )
    with bar:
        task = bar.add_task(description, total=total, info="")

        def advance(n: int = 1, **fields):
            info = " ".join(f"{k}={v}" for k, v in fields.items())
            bar.update(task, advance=n, info=info)

        yield advance


def info(msg: str) -> None:
    """A status line for people, on stderr."""
    if not _quiet:
        err_console.print(msg, highlight=False)
