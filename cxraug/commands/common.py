"""What every command shares: consoles, the user-error boundary, thread setup, tables that
fit the terminal."""

from __future__ import annotations

import errno
import functools
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from cxraug.errors import UserError

F = TypeVar("F", bound=Callable[..., Any])
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)  # the user can fix these (free space); any other OSError is ours


def out_console() -> Console:
    return Console(highlight=False)


def err_console() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


def fail(message: str) -> typer.Exit:
    """Print one error line and return the exit to raise (code 2: the user can fix it)."""
    import sys

    sys.stdout.flush()  # an unfinished progress line must not swallow the error line
    err_console().print(f"[bold red]error:[/] {message}", markup=True, highlight=False)
    return typer.Exit(2)


def user_errors(fn: F) -> F:
    """Turn a UserError raised anywhere below a command into one line and exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except UserError as e:
            raise fail(str(e).replace("[", r"\[")) from None
        except OSError as e:
            if e.errno not in DISK_FULL:
                raise
            where = f" writing {e.filename}" if e.filename else ""
            raise fail(
                f"no space left on the device{where}; free some space and run the same command again "
                "(outputs are written whole or not at all, so nothing half-written was kept)"
            ) from None

    return wrapper  # type: ignore[return-value]


def configure_threads() -> None:
    """Use every core for intra-op CPU work (torch defaults to physical cores, sometimes 1);
    the processes a launcher starts on one machine (LOCAL_WORLD_SIZE) share the cores out."""
    import torch

    share = (os.cpu_count() or 1) // max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    n = int(os.environ.get("CXRAUG_THREADS", share))
    torch.set_num_threads(max(1, n))


def parse_list(value: str | None) -> list[str] | None:
    if value is None:
        return None
    items = [v.strip() for v in value.split(",") if v.strip()]
    return items or None


@dataclass(frozen=True)
class Column:
    """A terminal table column. A number column never wraps: its cells are shown whole or the
    column is left out. ``drop`` orders what goes when the terminal is narrow: 0 never, then
    the highest first."""

    header: str
    justify: Literal["left", "right"] = "right"
    number: bool = True
    drop: int = 0


def fitted_table(
    console: Console,
    title: str,
    columns: Sequence[Column],
    rows: Sequence[Sequence[str]],
    caption: str = "",
    full_in: str = "",
    sections: Sequence[int] = (),
) -> Table:
    """A table as wide as the console allows without cutting a cell: droppable columns are
    left out (highest ``drop`` first, the rightmost of a tie) until it fits, and the caption
    says which and where the full table is."""
    shown = list(range(len(columns)))
    order = sorted((i for i, c in enumerate(columns) if c.drop), key=lambda i: (-columns[i].drop, -i))
    need = [_widths(c, [row[i] for row in rows]) for i, c in enumerate(columns)]

    def build(keep: list[int], note: str) -> Table:
        widths = _share(console.width - 3 * len(keep) - 1, [need[i] for i in keep])
        t = Table(title=title, caption=" ".join(x for x in (caption, note) if x) or None)
        for i, w in zip(keep, widths, strict=True):
            c = columns[i]
            # Fixed widths: rich would share a narrow terminal out proportionally and cut words.
            t.add_column(c.header, justify=c.justify, no_wrap=c.number, overflow="fold", width=w)
        for r, row in enumerate(rows):
            if r in sections:
                t.add_section()
            t.add_row(*(row[i] for i in keep))
        return t

    note = ""
    # Each column adds its padding (2) and a border (1); the table one border more.
    while order and sum(need[i][0] + 3 for i in shown) + 1 > console.width:
        shown.remove(order.pop(0))
        left_out = [columns[i].header.replace("\n", " ") for i in range(len(columns)) if i not in shown]
        note = f"Not shown at {console.width} columns: {', '.join(left_out)}" + (
            f" (full table in {full_in})." if full_in else "."
        )
    return build(shown, note)


def _widths(column: Column, cells: Sequence[str]) -> tuple[int, int]:
    """(narrowest, natural) width of a column: the narrowest cuts no cell (a number column's
    widest line, never wrapped; a text column's longest word); the natural wraps nothing."""
    from rich.cells import cell_len
    from rich.text import Text

    plain = [Text.from_markup(x).plain for x in (column.header, *cells)]
    natural = max(cell_len(line) for t in plain for line in t.split("\n"))
    if column.number:
        return natural, natural
    return max((cell_len(w) for t in plain for w in t.split()), default=1), natural


def _share(room: int, widths: list[tuple[int, int]]) -> list[int]:
    """Natural widths, the widest wrappable column narrowed first until they fit ``room``."""
    out = [natural for _, natural in widths]
    while sum(out) > room:
        slack = [(out[i] - lo, i) for i, (lo, _) in enumerate(widths) if out[i] > lo]
        if not slack:
            break
        out[max(slack)[1]] -= 1
    return out
