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
from dataclasses import dataclass
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
        raise UserError(f"{short(name, 60)!r} is not a path inside {root}; was an input edited?")
    path = base / rel
    if not path.resolve().is_relative_to(base):
        raise UserError(f"{short(name, 60)!r} leads outside {root} (through a link); was an input edited?")
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
    ``out`` needs ``overwrite``, and ``overwrite`` replaces only an empty folder or one whose
    ``marker`` (the file each kind of cxraug output is written with) cxraug wrote, by its
    content, and that holds nothing else than cxraug writes there (``check_replaceable``). ``source_dirs`` are
    input folders read file by file (prepare's --data-dir): ``out`` may lie inside one, but
    may not be or contain it."""
    check_output_place(out, inputs, source_dirs)
    if not Path(out).exists():
        return
    if not overwrite:
        raise UserError(f"{out} already exists; choose another --out or pass --overwrite")
    check_replaceable(out, kind, marker)


TOOL = "cxraug"  # the "tool" field of every marker file cxraug writes (dataset.json, scores.json, ...)
_STAGING = ("*.lock", "*.tmp", "*.partial", "*.old")  # hidden names of cxraug's locks, temp files, staging


@dataclass(frozen=True)
class OutputKind:
    """What cxraug writes in one kind of output folder: how --overwrite tells it is cxraug's.

    ``legacy`` are the fields a marker written before the ``tool`` field carried (all of them
    must be present); ``files`` and ``dirs`` are the paths (fnmatch patterns, relative to the
    folder) cxraug writes there. Hidden locks, temporary files and staging folders
    (``.NAME.lock`` / ``.tmp`` / ``.partial`` / ``.old``) are cxraug's at any depth."""

    marker: str
    legacy: tuple[tuple[str, Any], ...]  # (field, required value or None for "present")
    files: tuple[str, ...]
    dirs: tuple[str, ...] = ()


OUTPUT_KINDS: dict[str, OutputKind] = {
    "dataset.json": OutputKind(
        "dataset.json",
        (("format_version", None), ("cxraug_version", None), ("content_sha256", None)),
        (
            "dataset.json",
            "manifest.csv",
            "images_*.npy",
            "labels_*.npy",
            "failed.csv",
            "feature_cache/*.safetensors",
            "feature_cache/reference/*.safetensors",
        ),
        ("feature_cache", "feature_cache/reference"),
    ),
    "scores.json": OutputKind(
        "scores.json",
        (("kind", "score"),),
        ("scores.json", "scores.csv", "memorization.csv", "closest_pairs.png", "confusion.csv", "confusion.png"),
    ),
    "compare.json": OutputKind(
        "compare.json",
        (("kind", "compare"),),
        ("compare.json", "compare.csv", "compare.md", "compare.html", "samples_*.png", "quality_vs_cost.png"),
    ),
    "provenance.json": OutputKind(
        "provenance.json",
        (("cxraug_version", None), ("run", None), ("requested", None), ("n_per_class", None)),
        ("provenance.json", "manifest.csv", "manifest.part*.csv", "images/*/*.png"),
        ("images", "images/*"),
    ),
}


def _marker_problem(path: Path, kind: OutputKind) -> str | None:
    """Why ``path`` is not a marker cxraug wrote (None if it is): read by content, not by name."""
    try:
        obj = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return "not JSON cxraug wrote"
    if not isinstance(obj, dict):
        return f"a JSON {type(obj).__name__}, not the object cxraug writes"
    if obj.get("tool") == TOOL:
        return None
    if all(k in obj and (v is None or obj[k] == v) for k, v in kind.legacy):
        return None  # written by a cxraug from before the "tool" field
    return f'no "tool": "{TOOL}" field'


def foreign_entries(out: Path, kind: OutputKind) -> list[str]:
    """The paths below ``out`` (relative, sorted) that cxraug does not write in this kind of
    folder: a user's files, folders (empty ones too) and symlinks."""
    from fnmatch import fnmatchcase

    out = Path(out)
    foreign: list[str] = []
    for here, dirnames, filenames in os.walk(out):
        rel = Path(here).relative_to(out)
        for name in sorted(dirnames):
            r = (rel / name).as_posix()
            own = not (Path(here) / name).is_symlink() and (any(fnmatchcase(r, d) for d in kind.dirs) or _staging(name))
            if not own:
                foreign.append(r + "/")
        dirnames[:] = [n for n in dirnames if (rel / n).as_posix() + "/" not in foreign and not _staging(n)]
        for name in sorted(filenames):
            r = (rel / name).as_posix()
            if (Path(here) / name).is_symlink() or not (any(fnmatchcase(r, f) for f in kind.files) or _staging(name)):
                foreign.append(r)
    return sorted(foreign)


def _staging(name: str) -> bool:
    from fnmatch import fnmatchcase

    return name.startswith(".") and any(fnmatchcase(name, p) for p in _STAGING)


def check_replaceable(out: Path, kind: str, marker: str) -> None:
    """--overwrite removes only an empty folder, or a folder cxraug wrote as this kind of output:
    its marker is cxraug's by content (``tool: cxraug``, or the fields today's cxraug writes) and
    it holds nothing cxraug did not write there (a user's ``myruns/`` inside a dataset folder)."""
    out = Path(out)
    if not out.is_dir() or not any(out.iterdir()):
        return
    how = "--overwrite only replaces a folder cxraug wrote as one: choose another --out"
    owned = OUTPUT_KINDS.get(marker)
    if not (out / marker).is_file():
        if owned is not None and (out / INSIDE_STAGING).is_dir() and not foreign_entries(out, owned):
            return  # an in-place write (read-only parent) killed before its marker moved in
        raise UserError(f"{out} exists and is not a {kind} (no {marker}); {how}")
    if owned is None:
        return
    if problem := _marker_problem(out / marker, owned):
        raise UserError(f"{out} is not a {kind} cxraug wrote ({marker}: {problem}); {how}")
    if foreign := foreign_entries(out, owned):
        shown = ", ".join(short(f, 60) for f in foreign[:3]) + (
            f" and {len(foreign) - 3} more" if len(foreign) > 3 else ""
        )
        raise UserError(
            f"{out} holds what cxraug did not write there ({shown}); --overwrite would delete it: "
            "move it out of the folder, or choose another --out"
        )


def short(value: Any, limit: int = 80) -> str:
    """``value`` as quoted in an error line: at most ``limit`` characters of it (user input can
    be megabytes). A string is given as is, anything else as :func:`quoted` gives it."""
    text = value if isinstance(value, str) else quoted(value, limit)
    return text if len(text) <= limit else text[:limit] + f"... ({len(text):,} characters)"


def quoted(value: Any, limit: int = 80) -> str:
    """The repr of ``value`` for an error line, bounded before it is built: containers a few
    items and levels deep (a YAML alias bomb's full repr would never end), at most ``limit``
    characters."""
    import reprlib

    r = reprlib.Repr()
    r.maxlevel, r.maxlist, r.maxtuple, r.maxdict, r.maxset = 3, 4, 4, 4, 4
    r.maxstring = r.maxother = r.maxlong = limit
    text = r.repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


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


def writable(folder: Path) -> bool:
    """Whether this process may create files in ``folder`` (an existing folder)."""
    return os.access(folder, os.W_OK | os.X_OK)


def in_place(out: Path) -> bool:
    """Whether ``out`` must be written inside itself: an existing writable folder whose parent
    is not writable (a mount point under a read-only folder). Its lock and staging folder then
    go inside it, where --out is writable, instead of beside it."""
    out = Path(out)
    return out.is_dir() and writable(out) and out.parent.is_dir() and not writable(out.parent)


INSIDE_STAGING = ".cxraug.partial"


@contextlib.contextmanager
def _fresh_stage(staging: Path) -> Iterator[Path]:
    """An empty staging folder (a killed write's leftovers cleared), removed if the block fails."""
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir()
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


@contextlib.contextmanager
def atomic_dir(out: Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield a staging directory that replaces ``out`` only if the block succeeds."""
    out = Path(out)
    check_new_output(out, overwrite)
    out = out.resolve()  # through a symlink: replace what it points to, and keep the link
    if in_place(out):
        with _atomic_in_place(out) as stage:
            yield stage
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.parent / f".{out.name}.partial"
    with _fresh_stage(staging):
        yield staging
    if out.exists():
        old = out.parent / f".{out.name}.old"
        shutil.rmtree(old, ignore_errors=True)
        out.rename(old)
        staging.rename(out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        staging.rename(out)


@contextlib.contextmanager
def _atomic_in_place(out: Path) -> Iterator[Path]:
    """``atomic_dir`` for a folder that cannot be renamed (its parent is read-only): staged in
    ``out/.cxraug.partial``; on success the old entries go (the caller's check_output proved
    them cxraug's) and the new ones are moved in, JSON markers last, so the folder counts as
    an output only once it is whole. Locks (hidden ``.lock`` files) stay."""
    staging = out / INSIDE_STAGING
    with _fresh_stage(staging):
        yield staging
    for entry in out.iterdir():
        if entry.name == INSIDE_STAGING or (entry.name.startswith(".") and entry.name.endswith(".lock")):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    for entry in sorted(staging.iterdir(), key=lambda e: (e.suffix == ".json", e.name)):
        entry.rename(out / entry.name)
    staging.rmdir()


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


def read_json(path: Path, kind: type = dict) -> Any:
    """The JSON in ``path``, which must be a ``kind`` (an object: every JSON file cxraug writes
    is one); anything else is one line naming the file."""
    try:
        obj = json.loads(Path(path).read_bytes())
    except FileNotFoundError:
        raise UserError(f"{path} not found") from None
    except UnicodeDecodeError:
        raise UserError(f"{path} is not UTF-8 JSON; was it written by cxraug?") from None
    except json.JSONDecodeError as e:
        raise UserError(f"{path} is not valid JSON ({e}); was it written by cxraug?") from None
    except RecursionError:
        raise UserError(f"{path} nests its JSON too deeply to read; was it written by cxraug?") from None
    if not isinstance(obj, kind):
        found = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(type(obj), "a number")
        raise UserError(f"{path} holds {found}, not the JSON object cxraug writes; was it edited or replaced?")
    return obj


def json_number(v: object) -> float | None:
    """A number read back from stored JSON, or None for anything else (JSON's true and false
    are not numbers, though Python's bool is an int)."""
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


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
