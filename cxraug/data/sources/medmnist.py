"""MedMNIST npz files (ChestMNIST, PneumoniaMNIST); MedMNIST's own splits are kept.

ChestMNIST is NIH-derived and multi-label (14 columns in NIH's original label order): rows
with exactly one positive become that class, all-zero rows become "No Finding", the rest are
dropped. PneumoniaMNIST: 0 = normal -> "No Finding", 1 = pneumonia -> "Pneumonia".
MedMNIST publishes no patient ids, so each image is its own "patient"; its splits are the
ones MedMNIST made (patient-wise for ChestMNIST, which follows NIH's lists).
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from cxraug.classes import NIH_CLASSES, NO_FINDING
from cxraug.data.records import Record, SourceScan
from cxraug.errors import UserError

CHESTMNIST_COLUMNS = (
    "Atelectasis", "Cardiomegaly", "Effusion", "Infiltration", "Mass", "Nodule", "Pneumonia",
    "Pneumothorax", "Consolidation", "Edema", "Emphysema", "Fibrosis", "Pleural_Thickening",
    "Hernia",
)  # fmt: skip
FLAGS = ("chestmnist", "pneumoniamnist")
NPZ_SPLITS = {"train": "train", "val": "val", "test": "test"}


class ArrayLoader:
    """Serves images from arrays already in memory (index = Record.index within its split)."""

    def __init__(self, arrays: dict[str, np.ndarray]) -> None:
        self.arrays = arrays

    def __call__(self, record: Record) -> np.ndarray:
        img = self.arrays[record.split][record.index]
        if img.ndim == 3:  # MedMNIST+ colour variants: H x W x 3
            img = img.mean(axis=2).round().astype(np.uint8)
        return np.asarray(img, dtype=np.uint8)


def _labels_to_classes(flag: str, labels: np.ndarray) -> list[str | None]:
    labels = labels.reshape(len(labels), -1)
    if flag == "pneumoniamnist":
        return [NO_FINDING if int(v[0]) == 0 else "Pneumonia" for v in labels]
    out: list[str | None] = []
    for row in labels:
        pos = np.flatnonzero(row)
        out.append(NO_FINDING if len(pos) == 0 else CHESTMNIST_COLUMNS[pos[0]] if len(pos) == 1 else None)
    return out


def scan_medmnist(npz: Path, flag: str | None, classes: list[str] | None) -> SourceScan:
    if not npz.is_file():
        raise UserError(f"npz file {npz} does not exist; download it from MedMNIST (e.g. chestmnist.npz)")
    if flag is None:
        flag = next((f for f in FLAGS if f in npz.name.lower()), None)
        if flag is None:
            raise UserError(f"cannot tell which MedMNIST set {npz.name} is; pass --flag chestmnist or pneumoniamnist")
    if flag not in FLAGS:
        raise UserError(f"unknown --flag {flag!r}; known: {', '.join(FLAGS)}")
    try:
        data = np.load(npz)
        keys = set(data.files)
    except (OSError, ValueError, zipfile.BadZipFile) as e:
        raise UserError(f"cannot read {npz} as an npz file: {e}") from None
    need = [f"{s}_{k}" for s in NPZ_SPLITS for k in ("images", "labels")]
    absent = [k for k in need if k not in keys]
    if absent:
        raise UserError(
            f"{npz.name} lacks array(s) {', '.join(absent)} (has: {', '.join(sorted(keys))}); "
            "is it a MedMNIST npz file?"
        )
    arrays: dict[str, np.ndarray] = {}
    records: list[Record] = []
    dropped = 0
    flag_classes = list(CHESTMNIST_COLUMNS) if flag == "chestmnist" else ["Pneumonia"]
    known = [c for c in NIH_CLASSES if c == NO_FINDING or c in flag_classes]
    wanted = set(classes) if classes is not None else set(known)
    for split, key in NPZ_SPLITS.items():
        imgs, labels = data[f"{key}_images"], data[f"{key}_labels"]
        if len(imgs) != len(labels):
            raise UserError(f"{npz.name}: {key}_images and {key}_labels differ in length")
        arrays[split] = imgs
        for i, cls in enumerate(_labels_to_classes(flag, labels)):
            if cls is None:
                dropped += 1
                continue
            if cls not in wanted:
                continue
            h, w = imgs.shape[1:3]
            records.append(
                Record(
                    image_id=f"{flag}-{split}-{i:06d}",
                    patient_id=f"{flag}-{split}-{i:06d}",
                    label=cls,
                    split=split,
                    source_file=f"{npz.name}:{key}_images[{i}]",
                    orig_width=int(w),
                    orig_height=int(h),
                    index=i,
                )
            )
    notes = [f"{dropped} multi-label images dropped"] if dropped else []
    notes.append("MedMNIST has no patient ids: each image counts as its own patient")
    return SourceScan(
        name=f"medmnist:{flag}",
        classes=[c for c in known if c in wanted],
        records=records,
        loader=ArrayLoader(arrays),
        split_method="MedMNIST's own train/val/test",
        notes=notes,
        parallel=False,
    )
