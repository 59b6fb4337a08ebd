"""Checksums of a folder's files, written beside them (``SHA256SUMS``, the sha256sum format),
so a stored result that was altered or damaged on disk is noticed before it is used."""

from __future__ import annotations

import hashlib
from pathlib import Path

from cxraug.errors import UserError
from cxraug.fsutil import atomic_write_text

SUMS = "SHA256SUMS"


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_sums(folder: Path, names: list[str]) -> None:
    atomic_write_text(folder / SUMS, "".join(f"{file_sha256(folder / n)}  {n}\n" for n in names))


def verify_sums(folder: Path, what: str) -> None:
    """Raise a one-line UserError if ``SHA256SUMS`` or a listed file is missing or differs:
    a folder that cannot prove itself is not used."""
    sums = folder / SUMS
    if not sums.is_file():
        raise UserError(
            f"the {what} {folder} has no {SUMS}, so it cannot be verified; delete that folder to rebuild it"
        )
    for line in sums.read_text(errors="replace").splitlines():
        digest, _, name = line.partition("  ")
        path = folder / name
        if not name or "/" in name or name.startswith(".") or len(digest) != 64:
            raise UserError(f"{sums} is damaged; delete the {what} {folder} to rebuild it")
        if not path.is_file() or file_sha256(path) != digest:
            raise UserError(
                f"the {what} {folder} is damaged ({name} fails its checksum); delete that folder to rebuild it"
            )
