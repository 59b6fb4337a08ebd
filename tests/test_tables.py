"""One table model, three renderers: the Markdown and HTML pages and the terminal show the
same cells from the same ReportTable (an interval beside the value on a page, under it in the
terminal; page-only columns left out of the terminal), and compare's tables are built on it."""

from __future__ import annotations

from rich.console import Console

from cxraug.commands.common import rich_table
from cxraug.metrics.registry import SHOWN, shown
from cxraug.tables import Cell, ReportTable, TableColumn, cells, to_html, to_markdown


def _table() -> ReportTable:
    columns = [TableColumn("class", align="left", number=False), TableColumn("n real", terminal=False),
               TableColumn("train min", "train\nmin"), TableColumn("note", align="left", number=False)]  # fmt: skip
    rows = [
        [Cell("Hernia"), Cell("3"), Cell("1.25", "[1.00, 1.50]"), Cell("a | b")],
        [Cell("Hernia"), Cell("3"), Cell("2.00"), Cell("-")],
        cells("Mass", "7", "0.50", "-"),
    ]
    return ReportTable("Cost", columns, rows)


def test_pages_say_the_same_cells() -> None:
    t = _table()
    md = to_markdown(t)
    assert md[0] == "| class | n real | train min | note |" and md[1] == "|---|---|---|---|"
    assert md[2] == "| Hernia | 3 | 1.25 [1.00, 1.50] | a \\| b |"
    html = to_html(t)
    assert "<th>n real</th>" in html and "<td>1.25 [1.00, 1.50]</td>" in html and "<td>a | b</td>" in html


def test_the_terminal_shows_its_columns_with_intervals_under_values() -> None:
    console = Console(width=120, record=True, color_system=None)
    table = rich_table(_table(), console, title="cxraug test", caption="on 3 rows", full_in="x.md")
    assert [c.header for c in table.columns] == ["class", "train\nmin", "note"]
    console.print(table)
    out = console.export_text()
    assert "n real" not in out and "cxraug test" in out and "on 3 rows" in out
    lines = out.splitlines()
    value = next(i for i, line in enumerate(lines) if "1.25" in line)
    assert "[1.00, 1.50]" in lines[value + 1]
    assert table.rows[2].end_section is False and table.rows[1].end_section is True  # a rule where class changes


def test_metric_display_comes_from_the_registry() -> None:
    from cxraug.compare.report import fmt

    assert shown("kid").text(0.01234) == "12.34" == fmt(0.01234, "kid") and fmt(None, "fid") == "-"
    assert fmt(0.5, "precision") == f"{0.5:.{SHOWN['precision'].digits}f}" and shown("new_metric").label == "new_metric"
