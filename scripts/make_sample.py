"""Rebuild cxraug/data/sample/pneumoniamnist_sample.npz, the real chest X-ray sample that ships
with cxraug, from the PneumoniaMNIST balanced subset in ../shared/data/medmnist.

The sample keeps MedMNIST's own splits: all of val and test, and TRAIN_PER_CLASS training
images per class, drawn with a fixed seed from the training images that occur only once and
in no other split (exact pixel duplicates are dropped, so nothing of val or test is trained on).
Run from the repository root: python scripts/make_sample.py [SOURCE_NPZ]
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import numpy as np

SOURCE = Path("../shared/data/medmnist/pneumoniamnist_balanced_subset.npz")
OUT = Path("cxraug/data/sample/pneumoniamnist_sample.npz")
TRAIN_PER_CLASS = 600
SEED = 0


def _digest(img: np.ndarray) -> str:
    return hashlib.sha1(img.tobytes()).hexdigest()


def main(source: Path) -> None:
    with np.load(source) as d:
        arrays = {k: d[k] for k in d.files}
    held_out = {_digest(x) for s in ("val", "test") for x in arrays[f"{s}_images"]}
    digests = [_digest(x) for x in arrays["train_images"]]
    counts: dict[str, int] = {}
    for h in digests:
        counts[h] = counts.get(h, 0) + 1
    unique = np.array([counts[h] == 1 and h not in held_out for h in digests])
    labels = arrays["train_labels"].ravel()
    rng = np.random.default_rng(SEED)
    keep = np.sort(
        np.concatenate(
            [rng.choice(np.flatnonzero(unique & (labels == c)), TRAIN_PER_CLASS, replace=False) for c in (0, 1)]
        )
    )
    out = {**arrays, "train_images": arrays["train_images"][keep], "train_labels": arrays["train_labels"][keep]}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(OUT, **out)
    per = {s: np.bincount(out[f"{s}_labels"].ravel(), minlength=2).tolist() for s in ("train", "val", "test")}
    print(f"wrote {OUT} ({OUT.stat().st_size:,} bytes); normal/pneumonia per split: {per}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else SOURCE)
