"""One table model for every report: a ``ReportTable`` is built once from the results and
rendered by one renderer per medium, so the Markdown page, the HTML page and the terminal say
the same numbers with the same digits.

A cell with an interval keeps it apart (``Cell``): pages show it beside the value, the
terminal under it. A column may be left out of the terminal (``terminal=False``) or given a
shorter, line-broken terminal header; narrow terminals drop columns by ``drop`` (the
terminal's renderer is :func:`cxraug.commands.common.rich_table`), and the caption names the file with them all.
compare's pages use ``to_markdown`` / ``to_html``; a page of blocks (the benchmark's summary)
takes ``page_block``; both go through :mod:`cxraug.page`'s table renderers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from cxraug.page import Table, html_table, md_table


@dataclass(frozen=True)
class Cell:
    value: str
    interval: str = ""  # "[low, high]", or empty
    style: str = ""  # the terminal's Rich style (e.g. "bold" for a total row); pages ignore it

    def page(self) -> str:
        return f"{self.value} {self.interval}" if self.interval else self.value

    def terminal(self) -> str:
        return f"{self.value}\n{self.interval}" if self.interval else self.value


@dataclass(frozen=True)
class TableColumn:
    name: str  # the header on a page
    short: str = ""  # the terminal's header (line breaks allowed); default: name
    align: Literal["left", "right"] = "right"
    number: bool = True  # a number never wraps in the terminal: shown whole or left out
    drop: int = 0  # 0: always in the terminal; else the highest goes first when it is narrow
    terminal: bool = True  # False: on the pages only


@dataclass
class ReportTable:
    title: str
    columns: list[TableColumn]
    rows: list[list[Cell]] = field(default_factory=list)

    @property
    def header(self) -> list[str]:
        return [c.name for c in self.columns]

    def page_rows(self) -> list[list[str]]:
        return [[c.page() for c in r] for r in self.rows]


def cells(*values: str) -> list[Cell]:
    return [Cell(v) for v in values]


def to_markdown(t: ReportTable) -> list[str]:
    """The table's Markdown lines (a ``|`` in a cell escaped)."""
    return md_table(t.header, t.page_rows())


def to_html(t: ReportTable) -> str:
    return html_table(t.header, t.page_rows())


def page_block(t: ReportTable, caption: str = "") -> Table:
    """The table as a block of a :mod:`cxraug.page` page (Markdown and HTML from one list)."""
    return Table(t.header, t.page_rows(), caption)
