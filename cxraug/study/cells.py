"""A study's cells: one folder per piece of work (a reduced dataset, a generator run, a
synthetic set, a benchmark, a compare), each with ``cell.json``: its key and whether it is done.

The key holds every setting the cell's output depends on and the keys of the cells it reads
(so the source dataset's fingerprint reaches every cell). A finished cell whose key matches is
reused as it is; a cell whose stored key differs is refused in one line (another ``--out``, or
delete that folder to recompute it): results of other settings are never mixed. A cell started
and not finished (a killed study) is continued by its own command's resume rules."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cxraug.errors import UserError
from cxraug.fsutil import read_json, write_json

CELL = "cell.json"


def key_hash(key: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass
class Cell:
    folder: Path
    key: dict[str, Any]

    @property
    def hash(self) -> str:
        return key_hash(self.key)

    def record(self) -> dict[str, Any] | None:
        path = self.folder / CELL
        if not path.is_file():
            return None
        rec = read_json(path)
        stored = rec.get("key")
        if stored != json.loads(json.dumps(self.key, default=str)):
            diff = [k for k in sorted(set(stored or {}) | set(self.key)) if (stored or {}).get(k) != self.key.get(k)]
            raise UserError(
                f"{self.folder} was made with other settings ({', '.join(diff[:3]) or 'its key'} differ); "
                "a study never mixes them: use another --out, or delete that folder (and the cells made from it) to recompute"
            )
        return rec

    def done(self) -> bool:
        rec = self.record()
        return rec is not None and rec.get("status") == "done"

    def start(self) -> None:
        """Record the key before any work, so a later run with other settings is refused."""
        rec = self.record()
        if rec is None:
            self.folder.mkdir(parents=True, exist_ok=True)
            write_json(self.folder / CELL, {"key": self.key, "status": "started"})

    def finish(self, **info: object) -> None:
        write_json(self.folder / CELL, {"key": self.key, "status": "done", **info})

    def info(self) -> dict[str, Any]:
        rec = self.record()
        if rec is None or rec.get("status") != "done":
            raise UserError(f"{self.folder} is not finished; run the study again to finish it")
        return rec


@dataclass
class SizeCells:
    """Where the cells of one size are, once done."""

    n: int
    data: Path
    runs: dict[str, list[Path]] = field(default_factory=dict)  # generator -> its replicate runs
    sets: dict[str, list[Path]] = field(default_factory=dict)
    chosen: dict[str, str] = field(default_factory=dict)  # generator -> ratio chosen on validation
    selection: dict[str, dict[str, float | None]] = field(default_factory=dict)  # gen -> ratio -> val AUROC
    benchmark: Path | None = None
    compare: Path | None = None
    cost: dict[str, dict[str, float]] = field(default_factory=dict)  # cell name -> seconds, cpu_seconds
