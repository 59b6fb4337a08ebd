"""Atomic writes: outputs appear whole or not at all.

A directory is built in a hidden sibling staging folder and renamed into place at the end;
files are written to a temporary name in the same folder and renamed. A crash leaves at most
a staging folder, which the next run removes.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cxraug.errors import UserError


def check_new_output(out: Path, overwrite: bool) -> None:
    """Refuse an existing output unless ``overwrite`` is set."""
    if out.exists() and not overwrite:
        raise UserError(f"{out} already exists; choose another --out or pass --overwrite")


@contextlib.contextmanager
def atomic_dir(out: Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield a staging directory that replaces ``out`` only if the block succeeds."""
    out = Path(out)
    check_new_output(out, overwrite)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.parent / f".{out.name}.partial"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir()
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if out.exists():
        old = out.parent / f".{out.name}.old"
        shutil.rmtree(old, ignore_errors=True)
        out.rename(old)
        staging.rename(out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        staging.rename(out)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; outputs get the usual permissions
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


def read_json(path: Path) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise UserError(f"{path} not found") from None
    except json.JSONDecodeError as e:
        raise UserError(f"{path} is not valid JSON ({e}); was it written by cxraug?") from None


def append_jsonl(path: Path, obj: dict[str, Any]) -> None:
    """Append one JSON line; a single write of a short line is atomic enough for a log. After a
    line torn by a kill or a full disk, the new line starts on a line of its own."""
    with open(path, "a+b") as f:
        torn = f.tell() > 0 and (f.seek(f.tell() - 1), f.read(1))[1] != b"\n"
        f.write((("\n" if torn else "") + json.dumps(obj, default=str) + "\n").encode())


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The objects of a JSON-lines log (none if it is absent). A line cut by a kill or a full
    disk is not JSON: it is skipped, as a record that was never written."""
    if not Path(path).is_file():
        return []
    out = []
    for line in Path(path).read_text(errors="replace").splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(rec, dict):
            out.append(rec)
    return out
