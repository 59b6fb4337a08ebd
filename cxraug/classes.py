"""The 15 single-label classes of NIH ChestX-ray14, in cxraug's fixed order.

Order: "No Finding" first, then the 14 pathologies alphabetically, as in NIH's paper.
Label integers everywhere in cxraug index this list (or the dataset's own subset of it).
"""

from __future__ import annotations

import difflib
import hashlib
import re

NO_FINDING = "No Finding"
NIH_PATHOLOGIES: tuple[str, ...] = (
    "Atelectasis",
    "Cardiomegaly",
    "Consolidation",
    "Edema",
    "Effusion",
    "Emphysema",
    "Fibrosis",
    "Hernia",
    "Infiltration",
    "Mass",
    "Nodule",
    "Pleural_Thickening",
    "Pneumonia",
    "Pneumothorax",
)
NIH_CLASSES: tuple[str, ...] = (NO_FINDING, *NIH_PATHOLOGIES)

# Single-label image counts in the full NIH release (Data_Entry_2017_v2020.csv); the phantom
# set draws its class frequencies from these.
NIH_SINGLE_LABEL_COUNTS: dict[str, int] = {
    "No Finding": 60361,
    "Infiltration": 9547,
    "Atelectasis": 4215,
    "Effusion": 3955,
    "Nodule": 2705,
    "Pneumothorax": 2194,
    "Mass": 2139,
    "Consolidation": 1310,
    "Pleural_Thickening": 1126,
    "Cardiomegaly": 1093,
    "Emphysema": 892,
    "Fibrosis": 727,
    "Edema": 628,
    "Pneumonia": 322,
    "Hernia": 110,
}


def _norm(name: str) -> str:
    return name.strip().lower().replace(" ", "_")


def resolve_class(name: str, known: tuple[str, ...] | list[str]) -> str:
    """Map a user-typed class name to its canonical spelling: an exact match wins, else the one
    name equal up to case and ``_`` vs space; two such names (``Mass`` and ``mass``) are refused.

    Raises ValueError with the closest known names when nothing matches.
    """
    if name.strip() in known:
        return name.strip()
    matches = [k for k in known if _norm(k) == _norm(name)]
    if len(matches) > 1:
        raise ValueError(
            f"class {name!r} is ambiguous: it matches {' and '.join(repr(m) for m in matches)}; type one exactly"
        )
    if matches:
        return matches[0]
    norm = {_norm(k): k for k in known}
    key = _norm(name)
    close = difflib.get_close_matches(key, list(norm), n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(repr(norm[c]) for c in close)}?" if close else f"known: {', '.join(known)}"
    raise ValueError(f"unknown class {name!r}; {hint}")


def _split_names(spec: str | list[str]) -> list[str]:
    items = spec if isinstance(spec, list) else [spec]
    return [p for item in items for p in (s.strip() for s in item.split(",")) if p]


def means_all(spec: str | list[str]) -> bool:
    """True when a class spec asks for every class ('all', or nothing named)."""
    names = _split_names(spec)
    return not names or any(n.lower() == "all" for n in names)


def resolve_classes(spec: str | list[str], known: tuple[str, ...] | list[str]) -> list[str]:
    """Parse 'all', a comma-separated string, or a list of names into canonical names, in
    the order of ``known``."""
    names = _split_names(spec)
    if means_all(names):
        return list(known)
    chosen = {resolve_class(n, known) for n in names}
    return [k for k in known if k in chosen]


CLASS_NAME_PUNCTUATION = " _-.,()+'"
MAX_CLASS_NAME = 64
MAX_CLASS_NAME_BYTES = 128  # synth's <class>/<class>_N.png stays far below a file system's 255 bytes


def class_name_problem(name: object) -> str | None:
    """Why ``name`` cannot be a class name, or None. A class name becomes a folder and file
    name (synth writes images/<class>/<class>_N.png) and a cell of terminal, Markdown and HTML
    tables, so it holds letters, digits and ``_-.,()+'`` and spaces only: no path separator,
    no ``..``, no markup."""
    if not isinstance(name, str) or not name.strip():
        return "an empty class name"
    size = len(name.encode("utf-8", "surrogatepass"))
    if len(name) > MAX_CLASS_NAME or size > MAX_CLASS_NAME_BYTES:
        return (
            f"class name {name[:20]!r}{'...' if len(name) > 20 else ''} is {len(name)} characters, {size} bytes in "
            f"UTF-8; a class name (a folder and file name part) is at most {MAX_CLASS_NAME} characters and "
            f"{MAX_CLASS_NAME_BYTES} bytes"
        )
    bad = sorted({ch for ch in name if not (ch.isalnum() or ch in CLASS_NAME_PUNCTUATION)})
    if bad:
        return f"class name {name!r} holds {''.join(bad)!r}; use letters, digits, spaces and {CLASS_NAME_PUNCTUATION.strip()!r}"
    if name.startswith(".") or name != name.strip():
        return f"class name {name!r} starts with a dot or a space, or ends with a space"
    return None


_NOT_PLAIN = re.compile(r"[^A-Za-z0-9_.-]+")


def file_stem(name: str) -> str:
    """The part of a file name that stands for class ``name``, unique by construction: the name
    itself where it is plain (ASCII letters, digits, ``_.-``), otherwise its slug, ``+`` and 10
    hex digits of the name's sha256 (a plain name never holds ``+``), so "No Finding" and
    "No_Finding", or two names that differ only in non-ASCII letters, never share a file."""
    slug = _NOT_PLAIN.sub("_", name)
    if slug == name:
        return name
    return f"{slug[:60]}+{hashlib.sha256(name.encode()).hexdigest()[:10]}"
