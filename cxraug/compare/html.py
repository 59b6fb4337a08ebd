"""compare.html: one self-contained page (images as data: URIs, no script, no network) with
the tables and images of compare.md (the same table models), built with the page helpers
the benchmark's page uses."""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING

from cxraug.compare.report import context_lines, lead_line, tables, verdict_lines
from cxraug.metrics.registry import shown
from cxraug.page import CSP, STYLE, html_figure
from cxraug.tables import to_html

if TYPE_CHECKING:
    from cxraug.compare.core import CompareResult


def page(result: CompareResult, pngs: dict[str, tuple[bytes, str]]) -> str:
    labels = ", ".join(r["label"] for r in result.runs)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        CSP,
        f"<title>cxraug compare: {escape(labels)}</title><style>{STYLE}</style></head><body>",
        f"<h1>cxraug compare: {escape(labels)}</h1>",
        *(f"<p>{escape(line.replace('**', ''))}</p>" for line in context_lines(result)),
        f"<h2>Verdicts ({escape(shown(result.context.get('lead_metric', 'fid')).label)})</h2>",
        f"<p>{escape(lead_line(result))}</p><ul>",
        *(f"<li>{escape(v)}</li>" for v in verdict_lines(result)),
        "</ul>",
        *(f"<h2>{escape(t.title)}</h2>\n{to_html(t)}" for t in tables(result)),
        "<h2>Images</h2>",
    ]
    parts += [html_figure(data, alt, name) for name, (data, alt) in pngs.items()]
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
