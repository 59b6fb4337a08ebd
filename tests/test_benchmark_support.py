"""Helpers for the benchmark tests (no tests here): synthetic sets in the exact format of
``cxraug synth`` (PNGs + manifest.csv + provenance.json), made from real training images of
a prepared dataset plus noise, so the benchmark tests do not depend on a trained generator."""

from __future__ import annotations

import csv
import hashlib
import io
from pathlib import Path

import numpy as np
from PIL import Image

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
) -> Path:
    """``per_class[name]`` images of each class; the provenance fields can be overridden to
    fake a leaking generator, another dataset, other classes or another size."""
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
                    "run": "fake-run",
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
            "run": "fake-run",
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
    """A prepared dataset whose manifest keeps the rows of ``data_root`` in the given splits,
    renamed (e.g. {"train": "train"}), with their images and labels (a dataset is checked
    whole when opened); the other splits are empty."""
    import numpy as np

    data = open_prepared(data_root)
    df = data.manifest()
    df = df[df["split"].isin(list(keep_splits))].copy()
    out.mkdir(parents=True)
    parts = []
    for split in ("train", "val", "test"):
        sources = [src for src, dst in keep_splits.items() if dst == split]
        rows = df[df["split"].isin(sources)].copy()
        images = [np.asarray(data.images(src))[rows.loc[rows["split"] == src, "index"]] for src in sources]
        labels = [data.labels(src)[rows.loc[rows["split"] == src, "index"]] for src in sources]
        empty = np.zeros((0, data.size, data.size), np.uint8)
        np.save(out / f"images_{split}.npy", np.concatenate(images) if images else empty)
        np.save(
            out / f"labels_{split}.npy", np.concatenate(labels).astype(np.int64) if labels else np.zeros(0, np.int64)
        )
        rows["split"], rows["index"] = split, np.arange(len(rows))
        parts.append(rows)
    import pandas as pd

    df = pd.concat(parts, ignore_index=True)
    df.to_csv(out / "manifest.csv", index=False)
    meta = dict(data.meta)
    meta["counts"] = {
        s: {c: int(((df["split"] == s) & (df["class"] == c)).sum()) for c in data.classes}
        for s in ("train", "val", "test")
    }
    write_json(out / "dataset.json", meta)
    return out


def test_image_counts_read_as_english() -> None:
    from cxraug.benchmark.aggregate import images

    assert images(1, "test") == "1 test image"
    assert images(0, "test") == "0 test images"
    assert images(12, "real training") == "12 real training images"
