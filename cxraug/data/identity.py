"""A prepared dataset's identity: everything the numbers computed on it depend on.

``prepare`` records in dataset.json the sha256 of every array file and of manifest.csv, beside
the image size, channels and format version. :func:`identity_fingerprint` hashes all of it, so
every key built on the fingerprint (benchmark runs, feature caches, the reference classifier,
resume, a synthetic set's provenance) changes when any of it does: the same folder prepared at
32 and at 64 px, or one pixel edited, is another dataset. :func:`verify_content` checks the
stored hashes against the files when a dataset is opened (sha256 runs at about 1 GB/s: NIH's
single-label images at 64 px are 0.4 GB), so an edit made after ``prepare`` is refused in one
line instead of being scored under the old identity.

The manifest enters the identity without ``source_file``, the path prepare read each image
from: the same images, labels, patients and splits prepared from another folder (the data on
another machine, the built-in sample in another checkout) are the same dataset, and every key
built on it is shared. Datasets prepared before this rule (no ``manifest_identity_sha256`` in
dataset.json) keep the whole file's hash, so their fingerprints do not change.
"""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path
from typing import Any

from cxraug.data.records import SPLITS
from cxraug.errors import UserError

CONTENT_KEY = "content_sha256"
CONTENT_FILES: tuple[str, ...] = (
    "manifest.csv",
    *(f"{kind}_{split}.npy" for split in SPLITS for kind in ("images", "labels")),
)
IDENTITY_KEYS = ("format_version", "size", "channels", CONTENT_KEY)
MANIFEST_KEY = "manifest_identity_sha256"
LOCATION_COLUMNS = ("source_file",)  # where an image was read from: provenance, not identity


def file_sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def content_hashes(root: Path) -> dict[str, str]:
    """sha256 of each file a prepared dataset's numbers are read from (prepare and reduce call it)."""
    return {name: file_sha256(Path(root) / name) for name in CONTENT_FILES}


def manifest_identity(root: Path) -> str:
    """sha256 of manifest.csv's rows without the LOCATION_COLUMNS (order and every other column kept)."""
    h = hashlib.sha256()
    with open(Path(root) / "manifest.csv", newline="") as f:
        rows = csv.reader(f)
        header = next(rows)
        keep = [i for i, name in enumerate(header) if name not in LOCATION_COLUMNS]
        for row in (header, *rows):
            h.update(json.dumps([row[i] for i in keep]).encode() + b"\n")
    return h.hexdigest()


def identity_hashes(root: Path) -> dict[str, dict[str, str] | str]:
    """What prepare (and every command that writes a derived dataset) stores in dataset.json."""
    return {CONTENT_KEY: content_hashes(root), MANIFEST_KEY: manifest_identity(root)}


def identity(meta: dict[str, Any]) -> dict[str, Any]:
    """The part of dataset.json that says which pixels, labels and splits these are."""
    out = {k: meta.get(k) for k in IDENTITY_KEYS}
    if isinstance(meta.get(MANIFEST_KEY), str) and isinstance(out[CONTENT_KEY], dict):
        out[CONTENT_KEY] = {**out[CONTENT_KEY], "manifest.csv": meta[MANIFEST_KEY]}
    return out


def identity_fingerprint(meta: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(identity(meta), sort_keys=True).encode()).hexdigest()


def verify_content(root: Path, meta: dict[str, Any]) -> None:
    """Refuse a dataset whose files are not the ones prepare recorded (edited, replaced, cut)."""
    stored = meta.get(CONTENT_KEY)
    if not isinstance(stored, dict) or set(stored) != set(CONTENT_FILES):
        raise UserError(
            f"{root}/dataset.json records no content hashes (prepared by an older cxraug, or edited); "
            "prepare the dataset again with this version (`cxraug prepare ... --overwrite`)"
        )
    changed = []
    for name in CONTENT_FILES:
        path = Path(root) / name
        if not path.is_file() or file_sha256(path) != stored[name]:
            changed.append(name)
    if changed:
        raise UserError(
            f"{root}: {', '.join(changed)} differ from what `cxraug prepare` wrote (edited or replaced "
            "since); its numbers would not be this dataset's: prepare it again (`--overwrite`)"
        )


def describe_difference(old: dict[str, Any] | None, new: dict[str, Any]) -> str:
    """What differs between a stored identity and the current one, in words ('size 32 -> 64 px')."""
    if not isinstance(old, dict) or not all(k in old for k in IDENTITY_KEYS):
        return "its fingerprint differs (recorded by an older cxraug: no identity to compare)"
    parts = []
    for key in ("format_version", "size", "channels"):
        if old.get(key) != new.get(key):
            unit = " px" if key == "size" else ""
            parts.append(f"{key.replace('_', ' ')} {old.get(key)} -> {new.get(key)}{unit}")
    a, b = old.get(CONTENT_KEY) or {}, new.get(CONTENT_KEY) or {}
    files = [n for n in CONTENT_FILES if a.get(n) != b.get(n)]
    if files:
        parts.append(f"content of {', '.join(files)}")
    return "; ".join(parts) or "its fingerprint differs"
