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
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from cxraug.errors import UserError


def check_new_output(out: Path, overwrite: bool) -> None:
    """Refuse an existing output unless ``overwrite`` is set."""
    if out.exists() and not overwrite:
        raise UserError(f"{out} already exists; choose another --out or pass --overwrite")


def inside(root: Path, relative: str | Path) -> Path:
    """``root / relative``, proven to stay inside ``root``: no absolute path, no ``..``, no NUL,
    no symlink out. Every path cxraug builds from data (a class name, a manifest row) goes
    through here before it is read or written."""
    name = str(relative)
    rel = Path(name)
    base = Path(root).resolve()
    if not name or "\x00" in name or rel.is_absolute() or ".." in rel.parts:
        raise UserError(f"{name!r} is not a path inside {root}; was an input edited?")
    path = base / rel
    if not path.resolve().is_relative_to(base):
        raise UserError(f"{name!r} leads outside {root} (through a link); was an input edited?")
    return Path(root) / rel


def _is_within(path: Path, folder: Path) -> bool:
    return path == folder or path.is_relative_to(folder)


def check_output(
    out: Path,
    kind: str,
    marker: str,
    inputs: Sequence[Path] = (),
    overwrite: bool = False,
    source_dirs: Sequence[Path] = (),
) -> None:
    """Refuse, before any work, an output folder the command may not write or replace.

    ``out`` must be a folder path (not a file, not below a file); it must not be, contain or
    lie inside one of the command's ``inputs`` (the files and folders it reads); an existing
    ``out`` needs ``overwrite``, and ``overwrite`` replaces only an empty folder or one that
    holds ``marker`` (the file each kind of cxraug output is written with). ``source_dirs`` are
    input folders read file by file (prepare's --data-dir): ``out`` may lie inside one, but
    may not be or contain it."""
    check_output_place(out, inputs, source_dirs)
    if not Path(out).exists():
        return
    if not overwrite:
        raise UserError(f"{out} already exists; choose another --out or pass --overwrite")
    check_replaceable(out, kind, marker)


def check_replaceable(out: Path, kind: str, marker: str) -> None:
    """--overwrite removes only an empty folder or a folder cxraug wrote (it holds ``marker``)."""
    out = Path(out)
    if out.is_dir() and any(out.iterdir()) and not (out / marker).is_file():
        raise UserError(
            f"{out} exists and is not a {kind} (no {marker}); --overwrite only replaces a folder cxraug "
            "wrote as one: choose another --out"
        )


def check_output_place(out: Path, inputs: Sequence[Path] = (), source_dirs: Sequence[Path] = ()) -> None:
    """``out`` is a folder path apart from the command's inputs (see ``check_output``)."""
    out = Path(out)
    resolved = out.resolve()
    for inp, inside_ok in [*((p, False) for p in inputs), *((p, True) for p in source_dirs)]:
        src = Path(inp).resolve()
        if (_is_within(resolved, src) and not (inside_ok and resolved != src)) or _is_within(src, resolved):
            how = "is" if resolved == src else ("lies inside" if _is_within(resolved, src) else "contains")
            raise UserError(f"--out {out} {how} the input {inp}; choose an --out apart from the command's inputs")
    for parent in [out, *out.parents]:
        if parent.exists() and not parent.is_dir():
            what = "is a file" if parent == out else f"is below {parent}, which is a file"
            raise UserError(f"--out {out} {what}; choose a folder")


@contextlib.contextmanager
def atomic_dir(out: Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield a staging directory that replaces ``out`` only if the block succeeds."""
    out = Path(out)
    check_new_output(out, overwrite)
    out = out.resolve()  # through a symlink: replace what it points to, and keep the link
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


def check_appendable(path: Path) -> None:
    """Open ``path`` for appending, writing nothing: a log that will take a line after the
    work fails now instead (a read-only run folder)."""
    with open(path, "a"):
        pass


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
