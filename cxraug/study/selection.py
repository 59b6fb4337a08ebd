"""The dataset a study chooses its synthetic ratio on: the validation patients only.

The reduced training split stays; the validation patients are split in two halves by patient
(a seeded draw): one half is this dataset's ``val`` (the benchmark's checkpoint selection), the
other its ``test`` (the held-out score each ratio is chosen by). The real test patients are not
in it, so choosing a ratio never reads the test split; the chosen ratio's benchmark then reads
it once per run."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np

from cxraug.data.identity import identity_hashes
from cxraug.data.prepared import PreparedData, fingerprint
from cxraug.errors import UserError
from cxraug.fsutil import atomic_dir, write_json


def write_selection_data(data: PreparedData, rare: str, out: Path, seed: int = 0) -> Path:
    import pandas as pd

    df = data.manifest()
    val = data.split_rows("val")
    patients = np.array(sorted(val["patient_id"].unique()))
    rng = np.random.default_rng(seed)
    chosen = set(patients[rng.permutation(len(patients))[: len(patients) // 2]])
    is_a = val["patient_id"].isin(chosen).to_numpy()
    labels = data.labels("val")
    images = data.images("val")
    rare_i = data.classes.index(rare)
    for half, mask in (("first", is_a), ("second", ~is_a)):
        if not np.any(labels[val["index"].to_numpy()[mask]] == rare_i):
            raise UserError(
                f"choosing a ratio on validation needs {rare} images in both halves of the validation patients; "
                f"the {half} half has none: give one --ratios value"
            )
    with atomic_dir(Path(out), overwrite=True) as stage:
        for name in ("images_train.npy", "labels_train.npy"):
            shutil.copyfile(data.root / name, stage / name)
        rows = []
        for split, mask in (("val", is_a), ("test", ~is_a)):
            idx = val["index"].to_numpy()[mask]
            np.save(stage / f"images_{split}.npy", np.asarray(images[idx]))
            np.save(stage / f"labels_{split}.npy", labels[idx].astype(np.int64))
            part = val[mask].copy()
            part["split"] = split
            part["index"] = np.arange(len(part))
            rows.append(part)
        train = df[df["split"] == "train"]
        pd.concat([train, *rows], ignore_index=True)[df.columns].to_csv(stage / "manifest.csv", index=False)
        meta = dict(data.meta)
        counts = {
            split: {c: int(n) for c, n in zip(data.classes, np.bincount(np.load(stage / f"labels_{split}.npy"),
                                                                           minlength=len(data.classes)), strict=True)}
            for split in ("val", "test")
        }  # fmt: skip
        meta["counts"] = {**meta["counts"], **counts}
        meta["patients"] = {**meta.get("patients", {}), "val": len(chosen), "test": len(patients) - len(chosen)}
        meta["derived_from"] = {
            "path": str(data.root.resolve()),
            "fingerprint": fingerprint(data),
            "selection_split": "validation patients halved (val: checkpoints; test: ratio choice)",
            "seed": seed,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        meta["notes"] = [*meta.get("notes", []), "for choosing a ratio: val and test are halves of the val patients"]
        meta.update(identity_hashes(stage))
        write_json(stage / "dataset.json", meta)
    return Path(out)
