"""The synthetic-set format written by ``cxraug synth`` and read by score and benchmark.

  SYNTH_DIR/images/<class>/<class>_<i:06d>.png    8-bit grey PNGs
  SYNTH_DIR/manifest.csv   file (relative), class, label, seed, run, step, plugin, checksum
  SYNTH_DIR/provenance.json  run, plugin, step, classes (same order as the training data),
                           size, data {path, name, fingerprint, splits, real_data}, seed,
                           n_per_class, sample options, created, complete

``label`` indexes ``classes``, which is the class list of the prepared dataset the generator
was trained on, so a benchmark on that dataset reads labels without any mapping.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cxraug.errors import UserError
from cxraug.fsutil import read_json

MANIFEST = "manifest.csv"
PROVENANCE = "provenance.json"
MANIFEST_COLUMNS = ("file", "class", "label", "seed", "run", "step", "plugin", "checksum")


@dataclass(frozen=True)
class SyntheticSet:
    root: Path
    provenance: dict

    @property
    def classes(self) -> list[str]:
        return list(self.provenance["classes"])

    @property
    def size(self) -> int:
        return int(self.provenance["size"])

    def manifest(self):
        import pandas as pd

        return pd.read_csv(self.root / MANIFEST, dtype={"file": str, "class": str})

    def load(
        self, classes: list[str] | None = None, limit_per_class: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """uint8 N x S x S images and int64 labels, optionally only some classes / the first k."""
        from PIL import Image

        df = self.manifest()
        if classes is not None:
            df = df[df["class"].isin(classes)]
        if limit_per_class is not None:
            df = df.groupby("class", sort=False).head(limit_per_class)
        imgs = np.empty((len(df), self.size, self.size), dtype=np.uint8)
        for i, f in enumerate(df["file"]):
            with Image.open(self.root / f) as im:
                imgs[i] = np.asarray(im.convert("L"))
        return imgs, df["label"].to_numpy(dtype=np.int64)


def open_synthetic(root: Path | str) -> SyntheticSet:
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"synthetic set {root} does not exist; make it with `cxraug synth`")
    if not (root / PROVENANCE).is_file():
        raise UserError(f"{root} is not a synthetic set (no {PROVENANCE}); make it with `cxraug synth`")
    prov = read_json(root / PROVENANCE)
    if not prov.get("complete", False) or not (root / MANIFEST).is_file():
        raise UserError(f"synthetic set {root} is incomplete; run the same `cxraug synth` again to finish it")
    return SyntheticSet(root=root, provenance=prov)
