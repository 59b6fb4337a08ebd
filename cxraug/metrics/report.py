"""Score results as files: JSON, CSV, per-image nearest neighbours, closest-pairs PNG, and a
line in the run's (or synthetic set's) metrics.jsonl."""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path

from cxraug.fsutil import TOOL, append_jsonl, atomic_dir, write_json
from cxraug.metrics.registry import csv_columns
from cxraug.metrics.score import ScoreResult


def row_columns() -> tuple[str, ...]:
    """scores.csv's columns: the metrics' from the registry (read when written), the others the
    row's own (what, on what, how)."""
    return (
        "class", "split", "size", "n_real", "n_fake", "status", *csv_columns("inception"),
        "mem_share_pixels", "mem_share_features", "mem_near_copies", "extractor", "weights_sha256",
        *csv_columns("reference"),  # with the reference classifier: comparable only under the same reference
    )  # fmt: skip


def _csv(rows: list[dict], columns: tuple[str, ...] | list[str]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(columns), extrasaction="ignore")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def default_out_dir(owner: Path, split: str, step: int | None) -> Path:
    """OWNER/scores/<split>-step<S>-<time>, chosen before the work so it is checked and locked first."""
    stamp = time.strftime("%Y%m%dT%H%M%S")
    tag = split + (f"-step{step}" if step is not None else "") + f"-{stamp}"
    out, k = Path(owner) / "scores" / tag, 1
    while out.exists() or (out.parent / f".{out.name}.partial").exists():  # two scores in one second
        k += 1
        out = Path(owner) / "scores" / f"{tag}-{k}"
    return out


def write_outputs(result: ScoreResult, out: Path, metrics_jsonl: Path | None, overwrite: bool = False) -> Path:
    """Write the score folder atomically, then append one line to ``metrics_jsonl``."""
    with atomic_dir(out, overwrite=overwrite) as stage:
        write_json(stage / "scores.json", {"tool": TOOL, **result.to_json()})
        (stage / "scores.csv").write_text(_csv(result.rows, row_columns()))
        if result.per_image:
            (stage / "memorization.csv").write_text(_csv(result.per_image, list(result.per_image[0])))
        if result.pairs_png:
            (stage / "closest_pairs.png").write_bytes(result.pairs_png)
        for name, data in result.files.items():  # e.g. confusion.csv / confusion.png of fidelity
            (stage / name).write_bytes(data)
    if metrics_jsonl is not None:
        step = result.context.get("source", {}).get("step")
        append_jsonl(metrics_jsonl, {"step": step, **result.to_json(), "outputs": str(out)})
    return out
