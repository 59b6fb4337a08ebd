"""Write the training set of a controlled imbalance as a prepared dataset of its own.

A fair controlled experiment trains the generator on the same reduced training set the
classifier sees (e.g. 50 "No Finding" images, not all of them). This writes that set —
training rows kept by ``--controlled-imbalance``, validation and test unchanged — in the
prepared format, so ``cxraug train-gen --data REDUCED`` can use it. Its synthetic sets are
then accepted by a benchmark on either dataset: the patients it trained on are a subset of
the original training patients.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np

from cxraug.benchmark.config import BenchmarkConfig
from cxraug.benchmark.planning import benchmark_inputs, make_plan
from cxraug.data.identity import identity_hashes
from cxraug.data.prepared import PreparedData, fingerprint
from cxraug.errors import UserError
from cxraug.fsutil import atomic_dir, check_output, write_json

CHUNK = 4096  # rows copied at a time: memory stays flat for big training sets


def write_reduced(
    data: PreparedData, real_index: np.ndarray, kept: dict[str, int], seed: int, out: Path, overwrite: bool = False
) -> Path:
    labels = data.labels("train")
    with atomic_dir(Path(out), overwrite) as stage:
        src = data.images("train")
        dst = np.lib.format.open_memmap(
            stage / "images_train.npy", mode="w+", dtype=np.uint8, shape=(len(real_index), data.size, data.size)
        )
        for start in range(0, len(real_index), CHUNK):
            dst[start : start + CHUNK] = src[real_index[start : start + CHUNK]]
        dst.flush()
        del dst
        np.save(stage / "labels_train.npy", labels[real_index].astype(np.int64))
        for split in ("val", "test"):
            for name in (f"images_{split}.npy", f"labels_{split}.npy"):
                shutil.copyfile(data.root / name, stage / name)
        df = data.manifest()
        train = data.split_rows("train").iloc[real_index].reset_index(drop=True)
        train["index"] = np.arange(len(train))
        rest = df[df["split"] != "train"]
        import pandas as pd

        manifest = pd.concat([train[df.columns], rest], ignore_index=True)
        manifest.to_csv(stage / "manifest.csv", index=False)
        meta = dict(data.meta)
        counts = np.bincount(labels[real_index], minlength=len(data.classes))
        meta["counts"] = {**meta["counts"], "train": {c: int(n) for c, n in zip(data.classes, counts, strict=True)}}
        meta["patients"] = {**meta.get("patients", {}), "train": int(train["patient_id"].nunique())}
        meta["derived_from"] = {
            "path": str(data.root.resolve()),
            "fingerprint": fingerprint(data),
            "controlled_imbalance": kept,
            "imbalance_seed": seed,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        kept_text = ", ".join(f"{c}={n}" for c, n in kept.items())
        meta["notes"] = [*meta.get("notes", []), f"training split reduced by --controlled-imbalance {kept_text}"]
        meta.update(identity_hashes(stage))  # its own identity: other training rows
        write_json(stage / "dataset.json", meta)
    return Path(out)


def export_reduced(data_path: Path, cfg: BenchmarkConfig, out: Path, overwrite: bool = False) -> Path:
    """Write the controlled-imbalance training set (same val/test) as a prepared dataset."""
    plan = make_plan(Path(data_path), cfg)
    if not plan.controlled:
        raise UserError("--export-reduced needs --controlled-imbalance CLASS=N (what to reduce)")
    kept = {plan.classes[c]: n for c, n in plan.controlled.items()}
    check_output(out, "prepared dataset", "dataset.json", benchmark_inputs(plan), overwrite)
    return write_reduced(plan.data, plan.real_index, kept, cfg.imbalance_seed, out, overwrite)
