"""A benchmark folder's results.json read back as typed values, for the commands that use a
benchmark's numbers (``compare --benchmark``); a missing or malformed file is one UserError."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cxraug.errors import UserError
from cxraug.fsutil import json_number, read_json

RESULTS = "results.json"


@dataclass(frozen=True)
class Difference:
    """One paired difference (arm minus the reference arm) as results.json stores it."""

    mean: float | None
    low: float | None
    high: float | None
    p_adjusted: float | None
    reason: str


@dataclass(frozen=True)
class ClassDifferences:
    arm: str
    class_name: str | None
    diff: dict[str, Difference]  # metric -> difference; empty for the reference arm


@dataclass(frozen=True)
class BenchmarkResults:
    folder: Path
    reference: str | None
    arm_sets: dict[str, str | None]  # arm name -> the synthetic set it adds (None: real-only)
    synthetic: dict[str, str]  # synthetic set name -> its path as the benchmark was given it
    per_class: list[ClassDifferences]

    def set_dir(self, name: str) -> Path | None:
        """Where set ``name`` is now: its path if absolute, else relative to here, beside the
        benchmark folder or inside it (the benchmark may have been started from any of them);
        None when no candidate holds its provenance.json."""
        p = Path(self.synthetic[name])
        for cand in [p] if p.is_absolute() else [Path.cwd() / p, self.folder.parent / p, self.folder / p]:
            if (cand / "provenance.json").is_file():
                return cand
        return None


def _difference(d: Any) -> Difference:
    d = d if isinstance(d, dict) else {}
    return Difference(
        json_number(d.get("mean")), json_number(d.get("low")), json_number(d.get("high")), json_number(d.get("p_adjusted")),
        str(d.get("reason") or ""),
    )  # fmt: skip


def load_results(folder: Path) -> BenchmarkResults:
    folder = Path(folder)
    path = folder / RESULTS
    if not path.is_file():
        raise UserError(f"{folder} is not a benchmark folder (no {RESULTS}); make one with `cxraug benchmark`")
    res = read_json(path)
    if not isinstance(res, dict) or not isinstance(res.get("arms"), list):
        raise UserError(f"{path} does not look like a cxraug benchmark's results")
    sets = (res.get("config") or {}).get("synthetic") or {}
    items = res.get("per_class_summary") or []
    if not isinstance(sets, dict) or not isinstance(items, list):
        raise UserError(f"{path} does not look like a cxraug benchmark's results")
    if not all(isinstance(it, dict) and isinstance(it.get("diff") or {}, dict) for it in items):
        raise UserError(
            f"{path}: per_class_summary is malformed; rebuild it with `cxraug benchmark --report-only FOLDER`"
        )
    per_class = [
        ClassDifferences(
            str(it.get("arm")), it.get("class"), {m: _difference(d) for m, d in (it.get("diff") or {}).items()}
        )
        for it in items
    ]
    return BenchmarkResults(
        folder=folder,
        reference=res.get("reference"),
        arm_sets={a["name"]: a.get("synthetic") for a in res["arms"] if isinstance(a, dict) and "name" in a},
        synthetic={str(k): str(v) for k, v in sets.items()},
        per_class=per_class,
    )
