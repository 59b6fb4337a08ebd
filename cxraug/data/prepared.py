"""Reading a prepared dataset's metadata (no torch needed)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cxraug.data.identity import identity, identity_fingerprint, verify_content
from cxraug.data.records import SPLITS
from cxraug.errors import UserError
from cxraug.fsutil import read_json

SUPPORTED_FORMATS = (2,)  # 2: + content hashes of the arrays and manifest (format 1 had none)


@dataclass(frozen=True)
class PreparedData:
    root: Path
    meta: dict

    @property
    def classes(self) -> list[str]:
        return list(self.meta["classes"])

    @property
    def size(self) -> int:
        return int(self.meta["size"])

    @property
    def name(self) -> str:
        return self.root.name

    @property
    def identity(self) -> dict:
        """Format version, size, channels and content hashes (cxraug.data.identity)."""
        return identity(self.meta)

    def counts(self, split: str) -> dict[str, int]:
        return dict(self.meta["counts"][split])

    def images(self, split: str) -> np.ndarray:
        """N x S x S uint8, memory-mapped (nothing is read until used)."""
        return np.load(self.root / f"images_{split}.npy", mmap_mode="r")

    def labels(self, split: str) -> np.ndarray:
        return np.load(self.root / f"labels_{split}.npy")

    def manifest(self):
        import pandas as pd

        return pd.read_csv(self.root / "manifest.csv", dtype={"patient_id": str, "image_id": str})

    def patients(self, split: str) -> set[str]:
        df = self.manifest()
        return set(df.loc[df["split"] == split, "patient_id"])


def open_prepared(root: Path | str) -> PreparedData:
    root = Path(root)
    meta_path = root / "dataset.json"
    if not root.is_dir():
        raise UserError(f"prepared dataset {root} does not exist; make it with `cxraug prepare`")
    if not meta_path.is_file():
        raise UserError(f"{root} is not a prepared dataset (no dataset.json); make it with `cxraug prepare`")
    meta = read_json(meta_path)
    if meta.get("format_version") not in SUPPORTED_FORMATS:
        raise UserError(
            f"{root} has format version {meta.get('format_version')}, this cxraug reads "
            f"{', '.join(map(str, SUPPORTED_FORMATS))}; prepare it again with this version "
            "(`cxraug prepare ... --overwrite`)"
        )
    verify_content(root, meta)  # an edit since prepare is refused here, not scored as this dataset
    return PreparedData(root=root, meta=meta)


def summary_rows(meta: dict) -> list[dict]:
    """Per class: images per split, total, share of the total."""
    total = sum(sum(meta["counts"][s].values()) for s in SPLITS)
    rows = []
    for c in meta["classes"]:
        per = {s: int(meta["counts"][s].get(c, 0)) for s in SPLITS}
        n = sum(per.values())
        rows.append({"class": c, **per, "total": n, "share": n / total if total else 0.0})
    return rows


def imbalance_ratio(meta: dict, split: str = "train") -> float | None:
    """Largest over smallest class among the classes present in a split (None if none is).

    Absent classes are left out (a ratio over zero says nothing); ``absent_classes`` names them.
    """
    counts = [int(v) for v in meta["counts"][split].values() if int(v) > 0]
    return max(counts) / min(counts) if counts else None


def absent_classes(meta: dict, split: str) -> list[str]:
    return [c for c in meta["classes"] if int(meta["counts"][split].get(c, 0)) == 0]


def fingerprint(data: PreparedData) -> str:
    """The dataset's identity as one hash: format version, size, channels, and the content of
    its arrays and manifest (images, labels, patients and splits). Every cache and resume key
    builds on it."""
    return identity_fingerprint(data.meta)
