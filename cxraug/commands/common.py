"""What every command shares: consoles, the user-error boundary, thread setup, tables that
fit the terminal."""

from __future__ import annotations

import errno
import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from cxraug.errors import UserError
from cxraug.fsutil import short
from cxraug.runtime import configure_threads as configure_threads  # the one setup, shared with cxraug.api
from cxraug.tables import Cell, ReportTable

P = ParamSpec("P")
R = TypeVar("R")


def out_console() -> Console:
    return Console(highlight=False, markup=False, emoji=False)


def err_console() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True, markup=False, emoji=False)


# The consoles above print every string verbatim: a class name or path holding "[/]" or
# ":smile:" is text, never markup. Styled output is built from Text pieces instead, here.
def styled(text: str, style: str = "") -> Text:
    return Text(text, style=style)


def rich_line(*parts: str | tuple[str, str]) -> Text:
    """One line of plain strings and (text, style) pieces: ``rich_line(("note:", "yellow"), " ", msg)``."""
    return Text.assemble(*parts)


def fail(message: str) -> typer.Exit:
    """Print one error line and return the exit to raise (code 2: the user can fix it)."""
    import sys

    sys.stdout.flush()  # an unfinished progress line must not swallow the error line
    err_console().print(rich_line(("error:", "bold red"), " ", message))
    return typer.Exit(2)


# OSErrors the user's environment causes, and what to do about each; any other OSError is a
# bug of ours and keeps its traceback.
_ENVIRONMENT = {
    errno.ENOSPC: "no space left on the device{where}; free some space and {rerun}",
    errno.EDQUOT: "disk quota exceeded{where}; free some space and {rerun}",
    errno.EACCES: "permission denied{where}; choose a location you may write (or read), or fix its permissions",
    errno.EPERM: "operation not permitted{where}; choose a location you may write, or fix its permissions",
    errno.EROFS: "read-only file system{where}; choose a writable location",
    errno.ENOTDIR: "a part of the path{where} is a file, not a folder; choose a folder",
    errno.EISDIR: "{where_} is a folder where a file was expected; choose a file",
    errno.EEXIST: "{where_} exists and is in the way (a file where a folder is needed?); choose another path",
    errno.ENAMETOOLONG: "a file name is too long{where}; choose a shorter --out",
}
RERUN = "run the same command again (outputs are written whole or not at all, so nothing half-written was kept)"


def environment_message(e: OSError, rerun: str = RERUN) -> str | None:
    """The one line for an OSError the environment caused, or None for one that is our bug."""
    template = _ENVIRONMENT.get(e.errno) if e.errno is not None else None
    if template is None:
        return None
    name = e.filename if e.filename is not None else ""
    if e.errno == errno.ENAMETOOLONG and name:
        return _name_too_long(str(name))
    where = f" at {short(str(name), 200)}" if name else ""
    return template.format(where=where, where_=short(str(name), 200) or "a path", rerun=rerun)


def _name_too_long(path: str) -> str:
    """ENAMETOOLONG, naming the part of the path that is too long (a class name, a file in a
    labels CSV, --out) and the file system's limits, instead of blaming --out."""
    parts = [p for p in path.split("/") if len(p.encode(errors="surrogateescape")) > 255]
    if parts:
        part = parts[0]
        return (
            f"a file name is too long: {short(part, 60)!r} is {len(part)} characters, "
            f"{len(part.encode(errors='surrogateescape'))} bytes; file systems take at most 255 bytes per name "
            "(shorten what it comes from: --out, a class name or a file name in the input)"
        )
    return f"a path is too long ({len(path.encode(errors='surrogateescape'))} bytes): {short(path, 80)}; choose a shorter --out"


class EnvironmentFault(UserError):
    """An environment OSError, worded for where it happened (e.g. with the run to resume)."""

    def __init__(self, e: OSError, rerun: str) -> None:
        super().__init__(environment_message(e, rerun) or str(e))


def user_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn a UserError raised anywhere below a command, or an OSError the environment caused
    (a full disk, a read-only folder, a file in the way), into one line and exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        from cxraug.lock import reading_scope

        try:
            with reading_scope():  # the inputs' shared locks, held until the command ends
                return fn(*args, **kwargs)
        except UserError as e:
            raise fail(str(e)) from None
        except OSError as e:
            message = environment_message(e)
            if message is None:
                raise
            raise fail(message) from None

    return wrapper


CLASSES_HELP = "Comma-separated class names (--class is the same option)."


def warner(console: Console | None = None) -> Callable[[str], None]:
    """Print a ``cxraug.api`` warning as one yellow line (stderr: stdout may be --json)."""
    target = console or err_console()
    return lambda message: target.print(rich_line(("warning:", "bold yellow"), " ", message))


def sayer(console: Console | None = None) -> Callable[[str], None]:
    """Print a ``cxraug.api`` plan's lines as they come (stdout; stderr under --json, where
    stdout keeps its one JSON object). Plain text: a plan's brackets are not Rich markup."""
    target = console or out_console()
    return lambda line: target.print(line, markup=False, highlight=False)


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
    rows: Sequence[Sequence[str | Text]],
    caption: str | Text = "",
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
        full = Text(" ").join(Text(x) if isinstance(x, str) else x for x in (caption, note) if x)
        t = Table(title=title, caption=full if full.plain else None)
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


def _widths(column: Column, cells: Sequence[str | Text]) -> tuple[int, int]:
    """(narrowest, natural) width of a column: the narrowest cuts no cell (a number column's
    widest line, never wrapped; a text column's longest word); the natural wraps nothing."""
    from rich.cells import cell_len

    plain = [x if isinstance(x, str) else x.plain for x in (column.header, *cells)]
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


def _terminal_cell(c: Cell, interval_style: str) -> str | Text:
    if interval_style and c.interval:
        return Text.assemble((f"{c.value}\n", c.style), (c.interval, interval_style))
    return Text(c.terminal(), style=c.style) if c.style else c.terminal()


def rich_table(
    t: ReportTable,
    console: Console,
    title: str = "",
    caption: str | Text = "",
    full_in: str = "",
    sections: list[int] | None = None,
    interval_style: str = "",
) -> Table:
    """The terminal's table: its columns only, as wide as ``console`` allows. ``sections``:
    row indices that start a new section (default: where the first column's value changes);
    ``interval_style``: the Rich style of the interval line under a value (e.g. "dim")."""
    keep = [i for i, c in enumerate(t.columns) if c.terminal]
    columns = [
        Column(t.columns[i].short or t.columns[i].name, t.columns[i].align, t.columns[i].number, t.columns[i].drop)
        for i in keep
    ]
    rows = [[_terminal_cell(r[i], interval_style) for i in keep] for r in t.rows]
    if sections is None:
        sections = [k for k in range(1, len(t.rows)) if t.rows[k][0] != t.rows[k - 1][0]]
    return fitted_table(console, title or t.title, columns, rows, caption=caption, full_in=full_in, sections=sections)
