"""A report page as a list of blocks (headings, paragraphs, lists, tables, images), rendered
to Markdown and to one self-contained HTML file (images inline as data: URIs, no script, a
Content-Security-Policy that forbids any fetch), so that the two say the same.

Text may use Markdown's ``**bold**`` and ```code``` marks; the HTML renderer escapes the text
first and turns only those two marks into tags.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from html import escape

STYLE = """
body { font-family: sans-serif; margin: 1.5em; max-width: 80em; line-height: 1.4; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { border: 1px solid #bbb; padding: 0.2em 0.5em; text-align: right; }
th { background: #eee; } td:first-child, td:nth-child(2) { text-align: left; }
img { display: block; margin: 0.5em 0 1.5em; image-rendering: pixelated; max-width: 100%; }
.answer { border-left: 4px solid #2a6; padding: 0.2em 1em; background: #f4faf6; }
.note { color: #555; font-size: 0.9em; }
"""
# No network: forbid every fetch but inline images and the inline style.
CSP = (
    '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; img-src data:; '
    "style-src 'unsafe-inline'\">"
)


@dataclass
class Heading:
    level: int
    text: str


@dataclass
class Para:
    text: str
    css: str = ""  # HTML class, e.g. "note"


@dataclass
class Bullets:
    items: list[str]


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]]
    caption: str = ""  # a line under the table, e.g. why some cells have no interval


@dataclass
class Image:
    file: str  # the PNG's name beside the Markdown page
    alt: str
    caption: str = ""


@dataclass
class Link:
    href: str  # relative to the page
    text: str


@dataclass
class Box:
    """Blocks shown together and set off (the answer first on a page)."""

    blocks: list = field(default_factory=list)
    css: str = "answer"


Block = Heading | Para | Bullets | Table | Image | Link | Box


def inline_html(text: str) -> str:
    """Escape, then Markdown's **bold** and `code` only."""
    out = escape(text)
    out = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", out)
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", out)


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    """A table's Markdown lines (a ``|`` in a cell escaped, a line break made a space)."""
    out = ["| " + " | ".join(map(_md_cell, header)) + " |", "|" + "---|" * len(header)]
    return out + ["| " + " | ".join(map(_md_cell, r)) + " |" for r in rows]


def markdown(title: str, blocks: list[Block]) -> str:
    lines = [f"# {title}", ""]
    for b in blocks:
        lines += _md_block(b)
    return "\n".join(lines).rstrip("\n") + "\n"


def _md_block(b: Block) -> list[str]:
    if isinstance(b, Heading):
        return [f"{'#' * b.level} {b.text}", ""]
    if isinstance(b, Para):
        return [b.text, ""]
    if isinstance(b, Bullets):
        return [*(f"- {i}" for i in b.items), ""]
    if isinstance(b, Table):
        return [*md_table(b.header, b.rows), *(["", b.caption] if b.caption else []), ""]
    if isinstance(b, Image):
        return [f"![{b.alt}]({b.file})", *([b.caption] if b.caption else []), ""]
    if isinstance(b, Link):
        return [f"[{b.text}]({b.href})", ""]
    return [line for inner in b.blocks for line in _md_block(inner)]


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def html_table(header: list[str], rows: list[list[str]], caption: str = "") -> str:
    head = "".join(f"<th>{inline_html(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{inline_html(c)}</td>" for c in r) + "</tr>" for r in rows)
    cap = f'<p class="note">{inline_html(caption)}</p>\n' if caption else ""
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>\n{cap}"


def html_figure(png: bytes, alt: str, caption: str = "") -> str:
    cap = f"<figcaption>{inline_html(caption)}</figcaption>" if caption else ""
    return f'<figure><img src="{data_uri(png)}" alt="{escape(alt)}">{cap}</figure>'


def html(title: str, blocks: list[Block], pngs: dict[str, bytes]) -> str:
    """The whole page; ``pngs`` holds the bytes of every Image block's file (a missing one
    is left out, with its alt text said in words)."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        CSP,
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{inline_html(title)}</h1>",
    ]
    parts += [_html_block(b, pngs) for b in blocks]
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _html_block(b: Block, pngs: dict[str, bytes]) -> str:
    if isinstance(b, Heading):
        level = min(max(b.level, 2), 6)
        return f"<h{level}>{inline_html(b.text)}</h{level}>"
    if isinstance(b, Para):
        css = f' class="{b.css}"' if b.css else ""
        return f"<p{css}>{inline_html(b.text)}</p>"
    if isinstance(b, Bullets):
        return "<ul>" + "".join(f"<li>{inline_html(i)}</li>" for i in b.items) + "</ul>"
    if isinstance(b, Table):
        return html_table(b.header, b.rows, b.caption)
    if isinstance(b, Image):
        if b.file not in pngs:
            return f'<p class="note">({escape(b.alt)}: not written)</p>'
        return html_figure(pngs[b.file], b.alt, b.caption)
    if isinstance(b, Link):
        return f'<p><a href="{escape(b.href)}">{inline_html(b.text)}</a></p>'
    return f'<div class="{b.css}">' + "\n".join(_html_block(i, pngs) for i in b.blocks) + "</div>"
