"""A study's folder: its record (study.json: the options and the source dataset's identity),
and which folders ``--out`` may be (new, or a study of the same dataset and format)."""

from __future__ import annotations

from pathlib import Path

from cxraug.data.prepared import PreparedData
from cxraug.errors import UserError
from cxraug.fsutil import read_json, write_json
from cxraug.study.config import StudyConfig, key_dict

MARKER = "study.json"
FORMAT = 1


def check_out(out: Path, data: PreparedData, fingerprint: str) -> None:
    """--out: a new folder, or a study of this dataset and format (continued)."""
    probe = out  # a file at --out (or above it) is refused here, so --plan says so too
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise UserError(f"--out {out}: {probe} is a file, not a folder; choose another --out")
    if out.is_dir() and any(p for p in out.iterdir() if not p.name.startswith(".")) and not (out / MARKER).is_file():
        raise UserError(f"--out {out} exists and is not a study folder; choose another --out")
    if (out / MARKER).is_file():
        stored = read_json(out / MARKER)
        if stored.get("data", {}).get("fingerprint") != fingerprint:
            raise UserError(f"--out {out} holds a study of another dataset than {data.root}; use another --out")
        if stored.get("format") != FORMAT:
            raise UserError(f"--out {out} holds a study of another format; use another --out")


def write_marker(out: Path, cfg: StudyConfig, data: PreparedData, fingerprint: str) -> None:
    """study.json: the options every cell was made with and the source dataset's identity."""
    write_json(
        out / MARKER,
        {"format": FORMAT, "config": key_dict(cfg),
         "data": {"path": str(data.root.resolve()), "fingerprint": fingerprint,
                  "identity": data.identity}},
    )  # fmt: skip
