"""A benchmark's output folder: what it holds, what --overwrite may delete, its record.

benchmark.json                 the resolved options, the dataset, the arms and seeds
runs/<arm>/seed-<s>/           one trained model's record (:mod:`cxraug.benchmark.storedruns`)
results.csv, runs.csv, results.json, summary.md, *.png     the report (rebuilt every time)
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from cxraug.benchmark.plan import Plan
from cxraug.benchmark.predictions import PREDICTIONS_SCHEMA
from cxraug.data.identity import describe_difference
from cxraug.data.prepared import PreparedData, fingerprint
from cxraug.errors import UserError
from cxraug.fsutil import check_output_place, read_json, write_json

MARKER = "benchmark.json"
# 2: every arm trains the same number of optimiser steps, with matched controls and a declared
# question. Runs of format 1 (an epoch per arm's own training set) are not comparable.
FORMAT = 2
# Every file a benchmark writes at the top of its folder: --overwrite deletes these (and runs/,
# and its own temporaries), never a file a user put beside them.
RESULT, PREDICTIONS = "result.json", "predictions.npz"
REPORT_FILES = ("results.csv", "runs.csv", "results.json", "summary.md")
OWN_FILES = frozenset({
    MARKER, *REPORT_FILES, "verdicts.csv", "summary.html", "class_auroc.png", "roc_curves.png",
    "confusion_matrices.png",
})  # fmt: skip


def run_dir(out: Path, arm: str, seed: int) -> Path:
    return out / "runs" / arm / f"seed-{seed}"


def any_run(out: Path) -> bool:
    return any((out / "runs").glob(f"*/seed-*/{RESULT}"))


def check_out(out: Path, inputs: list[Path]) -> None:
    """--out may be a new folder or a benchmark's own (continued: finished runs are reused)."""
    check_output_place(out, inputs)
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).is_file():
        raise UserError(f"--out {out} exists and is not a benchmark output folder; choose another --out")


def prepare_out(out: Path, overwrite: bool) -> None:
    """After check_out: clear what --overwrite replaces, and make the folder."""
    if overwrite and (out / MARKER).is_file():
        shutil.rmtree(out / "runs", ignore_errors=True)
        for f in out.iterdir():
            if f.name in OWN_FILES and f.is_file() and not f.is_symlink():
                f.unlink()
            elif own_temporary(f):
                shutil.rmtree(f, ignore_errors=True) if f.is_dir() else f.unlink()
    out.mkdir(parents=True, exist_ok=True)


def own_temporary(f: Path) -> bool:
    """A staging folder (.NAME.partial) or a temporary file (.NAME.XXXX.tmp) left by a killed
    write of one of the benchmark's own outputs."""
    if f.is_symlink() or not f.name.startswith("."):
        return False
    if f.is_dir():
        return f.suffix == ".partial"
    return f.suffix == ".tmp" and any(f.name.startswith(f".{name}.") for name in OWN_FILES)


def check_format(out: Path, stored: dict) -> None:
    """Runs of an earlier benchmark format are never mixed with, or reported as, today's."""
    if stored.get("format") != FORMAT:
        raise UserError(
            f"{out} holds a benchmark made by an earlier cxraug, whose arms trained for unequal numbers of steps "
            "and had no matched controls: its runs are not comparable with today's; use another --out, or "
            "--overwrite to train again"
        )


def check_same_data(out: Path, data: PreparedData, stored: dict) -> None:
    """Runs stored in ``out`` are reused only on the dataset they were trained on."""
    old = stored.get("data") if isinstance(stored, dict) else None
    old = old if isinstance(old, dict) else {}
    if old.get("fingerprint") != fingerprint(data):
        raise UserError(
            f"{out} holds runs trained on another dataset than {data.root} "
            f"({describe_difference(old.get('identity'), data.identity)}); "
            "use another --out, or --overwrite to train again"
        )


def read_previous(out: Path, data: PreparedData) -> dict:
    """The stored benchmark.json of a folder being continued, checked: same format, same dataset."""
    previous = read_json(out / MARKER)
    if not isinstance(previous, dict):
        raise UserError(f"{out / MARKER} is not a benchmark record; use another --out, or --overwrite")
    check_format(out, previous)
    check_same_data(out, data, previous)
    return previous


def write_record(out: Path, plan: Plan, question: dict) -> None:
    """benchmark.json: what every run of the folder was trained with, and the declared question."""
    write_json(
        out / MARKER,
        {
            "format": FORMAT,
            "data": {
                "path": str(plan.data.root.resolve()),
                "fingerprint": fingerprint(plan.data),
                "identity": plan.data.identity,
            },
            "config": plan.cfg.model_dump(mode="json"),
            "arms": [a.name for a in plan.arms],
            "arm_specs": [a.spec() for a in plan.arms],
            "seeds": plan.seeds,
            "budget": {"steps": plan.steps, "evaluations": plan.evaluations, "batch_size": plan.cfg.batch_size},
            "question": question,
            "notes": plan.notes,
            "predictions_schema": PREDICTIONS_SCHEMA,
            "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        },
    )


def write_whole_report(report: object, out: Path) -> None:
    """The report files all, or none: a failure part way (a full disk) removes the ones written,
    so no results.csv is left without its summary.md. The stored runs stay: a rerun reuses them."""
    from cxraug.benchmark.report import write_report

    before = {p.name for p in out.iterdir()}
    try:
        write_report(report, out)
    except BaseException:
        for p in out.iterdir():
            if p.is_file() and p.name not in before | {MARKER}:
                p.unlink(missing_ok=True)
        for name in ("results.csv", "runs.csv", "verdicts.csv", "summary.md"):
            (out / name).unlink(missing_ok=True)  # an earlier report's tables would now be stale
        raise
