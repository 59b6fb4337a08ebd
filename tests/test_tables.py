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


def test_table_columns_and_direction_come_from_the_registry() -> None:
    """Adding a metric means defining it in the registry (its name in cxraug.metric_names): the
    score and compare CSV columns and which way is better follow from there."""
    import pytest

    from cxraug.compare.report import csv_columns
    from cxraug.metric_names import METRIC_NAMES
    from cxraug.metrics import registry
    from cxraug.metrics.report import row_columns

    assert tuple(registry.METRICS) == METRIC_NAMES
    every = [c for m in registry.METRICS.values() for c in m.csv_columns]
    assert [c for c in row_columns() if c in every] == every  # all of them, in registry order
    columns = csv_columns()
    assert registry.LOWER_IS_BETTER == ("fid", "kid", "fd_cxr", "kid_cxr")
    assert [o for o in registry.SHOWN if registry.better(o) is None] == ["density"]  # neither way better
    for o in registry.interval_outputs(list(METRIC_NAMES)):  # FD_cxr, fidelity ... with intervals too
        i = columns.index(o)
        assert columns[i + 1 : i + 3] == (f"{o}_low", f"{o}_high")
    assert registry.floor_outputs() == ("fid", "kid", "fd_cxr", "kid_cxr")
    for o in registry.floor_outputs():
        assert f"{o}_minus_floor_high" in columns
    # the definitions follow the names' order, and a name without a definition fails at import
    assert tuple(registry._in_name_order(reversed(registry._DEFINED))) == METRIC_NAMES
    with pytest.raises(RuntimeError, match="fd_cxr"):
        registry._in_name_order(registry._DEFINED[:-1])


def test_a_page_block_says_what_the_compare_pages_say() -> None:
    """The benchmark's summary (page blocks) and compare's pages render a table the same way."""
    from cxraug.page import html, markdown
    from cxraug.tables import page_block

    t = _table()
    md = markdown("x", [page_block(t, "why")]).splitlines()
    assert md[2 : 2 + len(t.rows) + 2] == to_markdown(t) and md[-1] == "why"
    assert to_html(t) in html("x", [page_block(t)], {})


def test_styles_reach_the_terminal_only() -> None:
    t = ReportTable("T", [TableColumn("arm", align="left", number=False), TableColumn("Δ")])
    t.rows = [[Cell("cgan", style="green"), Cell("+0.010", "[-0.020, +0.040]")]]
    assert to_markdown(t)[-1] == "| cgan | +0.010 [-0.020, +0.040] |"
    console = Console(width=80, record=True, force_terminal=True, color_system="standard")
    console.print(rich_table(t, console, interval_style="dim", sections=[]))
    out = console.export_text(styles=True)
    assert "\x1b[32mcgan" in out and "\x1b[2m[-0.020, +0.040]" in out  # green; dim under the value


def test_a_benchmark_number_is_one_cell_on_the_page_and_in_the_terminal() -> None:
    from cxraug.benchmark.answer import stat_cell, value
    from cxraug.benchmark.statistics import Stat

    s = Stat(mean=0.5, low=0.4, high=0.6, n=3)
    assert stat_cell(s, signed=True) == Cell("+0.500", "[+0.400, +0.600]")
    assert value(s, signed=True) == "+0.500 [+0.400, +0.600]" == stat_cell(s, signed=True).page()
    nan = float("nan")
    assert stat_cell(Stat(nan, nan, nan, 0)).value == "n/a" and stat_cell(Stat(0.5, nan, nan, 1)) == Cell("0.500")
