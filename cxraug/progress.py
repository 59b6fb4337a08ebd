"""Progress reporting, kept out of the library logic: the CLI passes a Rich reporter,
tests and library callers get a silent one."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Protocol

Advance = Callable[[int], None]


class Reporter(Protocol):
    def task(self, description: str, total: int | None) -> contextlib.AbstractContextManager[Advance]:
        """A context manager yielding ``advance(n)`` for one unit of long work."""
        ...


class NullReporter:
    @contextlib.contextmanager
    def task(self, description: str, total: int | None) -> Iterator[Advance]:
        yield lambda n=1: None


class RichReporter:
    """A Rich progress bar per task, with rate and ETA."""

    def __init__(self, console=None, disable: bool = False) -> None:
        self.console, self.disable = console, disable

    @contextlib.contextmanager
    def task(self, description: str, total: int | None) -> Iterator[Advance]:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        columns = (
            TextColumn("{task.description}", style="bold", markup=False),  # a class name is text, not markup
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
        )
        with Progress(*columns, console=self.console, disable=self.disable, transient=False) as p:
            tid = p.add_task(description, total=total)
            yield lambda n=1: p.advance(tid, n)


def duration_text(seconds: float) -> str:
    """A time estimate in words: '4.2 s', '45 s', '12 min', '3.4 h'."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
