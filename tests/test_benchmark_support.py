"""Helpers for the benchmark tests (no tests here): synthetic sets in the exact format of
``cxraug synth`` (PNGs + manifest.csv + provenance.json), made from real training images of
a prepared dataset plus noise, so the benchmark tests do not depend on a trained generator."""

from __future__ import annotations

import csv
import hashlib
import io
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from cxraug.data.identity import CONTENT_KEY, content_hashes
from cxraug.data.prepared import fingerprint, open_prepared
from cxraug.fsutil import write_json
from cxraug.synthset import MANIFEST, MANIFEST_COLUMNS, PROVENANCE


def make_synthetic_set(
    out: Path,
    data_root: Path,
    per_class: dict[str, int],
    *,
    splits: list[str] | None = None,
    data_fingerprint: str | None = None,
    data_path: str | None = None,
    classes: list[str] | None = None,
    size: int | None = None,
    seed: int = 0,
    run: str = "fake-run",
) -> Path:
    """``per_class[name]`` images of each class; the provenance fields can be overridden to
    fake a leaking generator, another dataset, other classes or another size (``run``: the
    run it says it came from; replicates come from different runs)."""
    data = open_prepared(data_root)
    all_classes = classes or data.classes
    size = size or data.size
    images, labels = data.images("train"), data.labels("train")
    rng = np.random.default_rng(seed)
    rows = []
    for name, n in per_class.items():
        c = data.classes.index(name)
        pool = np.flatnonzero(labels == c)
        (out / "images" / name).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            base = np.asarray(images[pool[i % len(pool)]], dtype=np.float64)
            img = np.clip(base + rng.normal(0, 6, base.shape), 0, 255).astype(np.uint8)
            if size != data.size:
                img = np.asarray(Image.fromarray(img).resize((size, size)))
            buf = io.BytesIO()
            Image.fromarray(img, mode="L").save(buf, format="PNG")
            rel = f"images/{name}/{name}_{i:06d}.png"
            (out / rel).write_bytes(buf.getvalue())
            rows.append(
                {
                    "file": rel,
                    "class": name,
                    "label": all_classes.index(name) if name in all_classes else c,
                    "seed": seed,
                    "run": run,
                    "step": 100,
                    "plugin": "fake",
                    "checksum": hashlib.sha256(buf.getvalue()).hexdigest(),
                }
            )
    with open(out / MANIFEST, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=MANIFEST_COLUMNS)
        w.writeheader()
        w.writerows(rows)
    write_json(
        out / PROVENANCE,
        {
            "run": run,
            "plugin": "fake",
            "step": 100,
            "classes": all_classes,
            "size": size,
            "data": {
                "path": data_path if data_path is not None else str(Path(data_root).resolve()),
                "name": Path(data_root).name,
                "fingerprint": data_fingerprint or fingerprint(data),
                "splits": splits or ["train"],
                "real_data": data.meta.get("real_data", True),
            },
            "seed": seed,
            "n_per_class": max(per_class.values()),
            "complete": True,
        },
    )
    return out


def write_derived_dataset(out: Path, data_root: Path, keep_splits: dict[str, str]) -> Path:
    """A prepared dataset whose rows are those of ``data_root`` in the given splits, renamed
    (e.g. {"train": "train"}), with its own arrays and content hashes: another dataset made
    from the same patients, enough for patient-overlap checks."""
    data = open_prepared(data_root)
    df = data.manifest()
    out.mkdir(parents=True)
    parts = []
    for s in ("train", "val", "test"):
        rows = df[df["split"].map(keep_splits) == s].sort_values(["split", "index"]).copy()
        images = [data.images(old)[idx] for old, idx in zip(rows["split"], rows["index"], strict=True)]
        np.save(out / f"images_{s}.npy", np.asarray(images, np.uint8).reshape(-1, data.size, data.size))
        np.save(out / f"labels_{s}.npy", rows["label"].to_numpy(np.int64))
        rows["split"], rows["index"] = s, np.arange(len(rows))
        parts.append(rows)
    pd.concat(parts).to_csv(out / "manifest.csv", index=False)
    meta = dict(data.meta)
    meta["counts"] = {
        s: {c: int(((p["split"] == s) & (p["class"] == c)).sum()) for c in data.classes}
        for s, p in zip(("train", "val", "test"), parts, strict=True)
    }
    meta[CONTENT_KEY] = content_hashes(out)
    write_json(out / "dataset.json", meta)
    return out


def test_image_counts_read_as_english() -> None:
    from cxraug.benchmark.aggregate import images

    assert images(1, "test") == "1 test image"
    assert images(0, "test") == "0 test images"
    assert images(12, "real training") == "12 real training images"
