"""Stored runs: one trained model's folder, written whole and read back verified.

runs/<arm>/seed-<s>/result.json       its resume key, training-set counts, history, thresholds, times
runs/<arm>/seed-<s>/predictions.npz   validation and test predictions (:mod:`cxraug.benchmark.predictions`)
runs/<arm>/seed-<s>/SHA256SUMS        a damaged run is refused with one line, never used
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from cxraug.benchmark.outfolder import PREDICTIONS, RESULT, run_dir
from cxraug.benchmark.predictions import PREDICTIONS_SCHEMA, check_predictions
from cxraug.benchmark.runkey import key_difference, same_key, world_hint
from cxraug.errors import UserError
from cxraug.fsutil import atomic_dir, read_json, write_json
from cxraug.integrity import verify_sums, write_sums

if TYPE_CHECKING:
    from cxraug.benchmark.plan import Plan
    from cxraug.benchmark.spread import Placement
    from cxraug.benchmark.training import RunOutput
    from cxraug.classify.trainset import TrainSet


def load_run(path: Path) -> tuple[dict, dict[str, np.ndarray]]:
    """A stored run, verified: a damaged one is refused with one line, never used."""
    import zipfile

    verify_sums(path, "stored benchmark run")
    result = read_json(path / RESULT)
    try:
        with np.load(path / PREDICTIONS) as z:
            preds = {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise UserError(
            f"the stored benchmark run {path} is damaged ({PREDICTIONS}: {type(e).__name__}); delete that folder to rebuild it"
        ) from None
    if not isinstance(result, dict):
        raise UserError(f"the stored benchmark run {path} is damaged ({RESULT}); delete that folder to rebuild it")
    return result, preds


def run_result(key: dict, plan: Plan, arm: str, seed: int, output: RunOutput, ts: TrainSet, place: Placement) -> dict:
    """What result.json records of a trained run."""
    return {
        "key": key,
        "arm": arm,
        "seed": seed,
        "best_check": output.best_epoch,
        "best_step": output.best_step,
        "steps": output.steps,
        "evaluations": plan.evaluations,
        "epochs": plan.cfg.epochs,
        "history": output.history,
        "thresholds": output.thresholds.tolist(),
        "train_real": ts.real_counts().tolist(),
        "train_synthetic": ts.synth_counts().tolist(),
        "seconds": round(output.seconds, 3),
        "device": output.device,
        "num_processes": place.per_model,
        "spread": place.mode,
        "process_index": place.rank,
        "launched_processes": place.world,
        "predictions_schema": PREDICTIONS_SCHEMA,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def store_run(path: Path, result: dict, preds: dict[str, np.ndarray]) -> None:
    """A run's folder, written whole (atomically) with its checksums."""
    with atomic_dir(path, overwrite=True) as stage:
        write_json(stage / RESULT, result)
        np.savez_compressed(stage / PREDICTIONS, **preds)
        write_sums(stage, [RESULT, PREDICTIONS])


def stored_runs(
    out: Path, keys: dict[tuple[str, int], dict], test_labels: np.ndarray, test_patients: np.ndarray
) -> dict[tuple[str, int], tuple[dict, dict[str, np.ndarray]]]:
    """The stored runs, read and verified; one trained with other settings, or on other test
    rows, is refused before anything is trained."""
    stored = {}
    for (arm_name, seed), key in keys.items():
        path = run_dir(out, arm_name, seed)
        if not (path / RESULT).is_file():
            continue
        result, preds = load_run(path)
        old = result.get("key", {})
        if not same_key(old, key):
            raise UserError(
                f"{path} was trained with other settings ({key_difference(old, key)}); "
                f"{world_hint(old.get('world_size'), key['world_size'])}"
                "use another --out, or --overwrite to start again"
            )
        check_predictions(path, preds, "test", test_labels, test_patients)
        stored[(arm_name, seed)] = (result, preds)
    return stored
