"""compare.html: one self-contained page (images as data: URIs, no script, no network) with
the tables and images of compare.md."""

from __future__ import annotations

import base64
from html import escape
from typing import Any

from cxraug.compare.report import context_lines, tables, verdict_lines

STYLE = """
body { font-family: sans-serif; margin: 1.5em; max-width: 80em; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { border: 1px solid #bbb; padding: 0.2em 0.5em; text-align: right; }
th { background: #eee; } td:first-child, td:nth-child(2) { text-align: left; }
img { display: block; margin: 0.5em 0 1.5em; image-rendering: pixelated; max-width: 100%; }
"""


def _table(title: str, header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<h2>{escape(title)}</h2>\n<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>\n"


def page(result: Any, pngs: dict[str, tuple[bytes, str]]) -> str:
    labels = ", ".join(r["label"] for r in result.runs)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        # No network: forbid every fetch but inline images and the inline style.
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; img-src data:; '
        "style-src 'unsafe-inline'\">",
        f"<title>cxraug compare: {escape(labels)}</title><style>{STYLE}</style></head><body>",
        f"<h1>cxraug compare: {escape(labels)}</h1>",
        *(f"<p>{escape(line.replace('**', ''))}</p>" for line in context_lines(result)),
        "<h2>Verdicts (FID)</h2><ul>",
        *(f"<li>{escape(v)}</li>" for v in verdict_lines(result)),
        "</ul>",
        *(_table(*t) for t in tables(result)),
        "<h2>Images</h2>",
    ]
    for name, (data, alt) in pngs.items():
        uri = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
        parts.append(f'<figure><img src="{uri}" alt="{escape(alt)}"><figcaption>{escape(name)}</figcaption></figure>')
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
