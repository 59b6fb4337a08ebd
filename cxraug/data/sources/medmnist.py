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
from cxraug.fsutil import short

CHESTMNIST_COLUMNS = (
    "Atelectasis", "Cardiomegaly", "Effusion", "Infiltration", "Mass", "Nodule", "Pneumonia",
    "Pneumothorax", "Consolidation", "Edema", "Emphysema", "Fibrosis", "Pleural_Thickening",
    "Hernia",
)  # fmt: skip
FLAGS = ("chestmnist", "pneumoniamnist")
NPZ_SPLITS = ("train", "val", "test")  # MedMNIST's array prefixes = cxraug's split names


class ArrayLoader:
    """Serves images from arrays already in memory (index = Record.index within its split)."""

    def __init__(self, arrays: dict[str, np.ndarray]) -> None:
        self.arrays = arrays

    def __call__(self, record: Record) -> np.ndarray:
        img = self.arrays[record.split][record.index]
        if img.ndim == 3:  # MedMNIST+ colour variants: H x W x 3
            img = img.mean(axis=2).round().astype(np.uint8)
        return np.asarray(img, dtype=np.uint8)


def _check_labels(npz: Path, split: str, labels: np.ndarray) -> None:
    """Labels are 0/1 flags (one column for PneumoniaMNIST, 14 for ChestMNIST): a NaN, a
    fraction or another value would be read as some class silently (0.6 -> 0 = No Finding)."""
    values = labels.astype(np.float64, copy=False) if labels.dtype.kind in "biuf" else None
    bad = np.ones(labels.shape, bool) if values is None else ~np.isin(values, (0.0, 1.0))
    if bad.any():
        row = int(np.argwhere(bad)[0][0])
        what = labels.dtype if values is None else labels.reshape(len(labels), -1)[row].tolist()
        raise UserError(
            f"{npz.name}: {split}_labels row {row} is {what}; MedMNIST labels are 0 or 1 "
            f"({int(bad.reshape(len(labels), -1).any(axis=1).sum())} such rows): use the file as downloaded"
        )


def _labels_to_classes(flag: str, labels: np.ndarray) -> list[str | None]:
    labels = labels.reshape(len(labels), -1)
    if flag == "pneumoniamnist":
        return [NO_FINDING if int(v[0]) == 0 else "Pneumonia" for v in labels]
    out: list[str | None] = []
    for row in labels:
        pos = np.flatnonzero(row)
        out.append(NO_FINDING if len(pos) == 0 else CHESTMNIST_COLUMNS[pos[0]] if len(pos) == 1 else None)
    return out


def _check_headers(npz: Path, names: list[str]) -> None:
    """Each member's .npy header, read before its array is allocated: a header that claims more
    bytes than its member holds is a damaged file, and arrays that cannot fit in memory are the
    size refusal, not a MemoryError."""
    from cxraug.resources import require_memory

    total = 0
    try:
        with zipfile.ZipFile(npz) as z:
            for name in names:
                info = z.getinfo(f"{name}.npy")
                with z.open(info) as f:
                    version = np.lib.format.read_magic(f)
                    read = (
                        np.lib.format.read_array_header_1_0
                        if version == (1, 0)
                        else np.lib.format.read_array_header_2_0
                    )
                    shape, _, dtype = read(f)
                    header = f.tell()
                if dtype.hasobject:
                    raise UserError(
                        f"{npz.name}: {name} holds Python objects, not pixels or labels; is it a MedMNIST npz?"
                    )
                nbytes = int(np.prod(shape, dtype=object)) * dtype.itemsize
                if nbytes != info.file_size - header:
                    raise UserError(
                        f"{npz.name}: the header of {name} claims {nbytes:,} bytes ({shape}) but the file holds "
                        f"{max(0, info.file_size - header):,}; the file is damaged: download it again"
                    )
                total += nbytes
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as e:
        raise UserError(f"cannot read the arrays of {npz.name} ({type(e).__name__}); download it again") from None
    require_memory(f"reading {npz.name}", total)


def _load_arrays(npz: Path) -> dict[str, np.ndarray]:
    """The six arrays of a MedMNIST npz, checked; anything else is a UserError."""
    try:
        data = np.load(npz)  # allow_pickle stays off: an npz is data, never code
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise UserError(f"cannot read {npz} as an npz file ({e}); is it a MedMNIST download?") from None
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise UserError(f"{npz} holds a single array, not an npz archive of MedMNIST's six arrays")
    need = [f"{s}_{k}" for s in NPZ_SPLITS for k in ("images", "labels")]
    with data:
        absent = [k for k in need if k not in data.files]
        if absent:
            raise UserError(
                f"{npz.name} lacks array(s) {', '.join(absent)} (has: {', '.join(sorted(data.files)) or 'none'}); "
                "is it a MedMNIST npz file?"
            )
        _check_headers(npz, need)  # before any array is allocated
        try:
            arrays = {k: data[k] for k in need}
        except (ValueError, OSError, zipfile.BadZipFile) as e:
            raise UserError(f"cannot read the arrays of {npz.name} ({e}); download it again") from None
    for split in NPZ_SPLITS:
        imgs, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if imgs.ndim not in (3, 4) or imgs.dtype != np.uint8 or len(imgs) != len(labels):
            raise UserError(
                f"{npz.name}: {split}_images must be uint8 N x H x W (or N x H x W x 3) with one row of "
                f"{split}_labels per image; found {imgs.dtype} {imgs.shape} and labels {labels.shape}"
            )
        _check_labels(npz, split, labels)
    return arrays


def scan_medmnist(npz: Path, flag: str | None, classes: list[str] | None) -> SourceScan:
    if not npz.is_file():
        raise UserError(f"npz file {npz} does not exist; download it from MedMNIST (e.g. chestmnist.npz)")
    if flag is None:
        flag = next((f for f in FLAGS if f in npz.name.lower()), None)
        if flag is None:
            raise UserError(f"cannot tell which MedMNIST set {npz.name} is; pass --flag chestmnist or pneumoniamnist")
    if flag not in FLAGS:
        raise UserError(f"unknown --flag {short(flag, 60)!r}; known: {', '.join(FLAGS)}")
    arrays = _load_arrays(npz)
    width = len(CHESTMNIST_COLUMNS) if flag == "chestmnist" else 1
    found = arrays["train_labels"].reshape(len(arrays["train_labels"]), -1).shape[1]
    if found != width:
        raise UserError(f"{npz.name} has {found} label column(s) but {flag} has {width}; pass the right --flag")
    flag_classes = list(CHESTMNIST_COLUMNS) if flag == "chestmnist" else ["Pneumonia"]
    known = [c for c in NIH_CLASSES if c == NO_FINDING or c in flag_classes]
    wanted = set(classes) if classes is not None else set(known)
    images: dict[str, np.ndarray] = {}
    records: list[Record] = []
    dropped = 0
    for split in NPZ_SPLITS:
        images[split] = arrays[f"{split}_images"]
        for i, cls in enumerate(_labels_to_classes(flag, arrays[f"{split}_labels"])):
            if cls is None:
                dropped += 1
            elif cls in wanted:
                image_id = f"{flag}-{split}-{i:06d}"
                records.append(
                    Record(
                        image_id=image_id,
                        patient_id=image_id,
                        label=cls,
                        split=split,
                        source_file=f"{npz.resolve()}:{split}_images[{i}]",
                        index=i,
                    )
                )
    notes = [f"{dropped} multi-label images dropped (single-label images only)"] if dropped else []
    notes.append("MedMNIST has no patient ids: each image counts as its own patient")
    return SourceScan(
        name=f"medmnist:{flag}",
        classes=[c for c in known if c in wanted],
        records=records,
        loader=ArrayLoader(images),
        split_method="MedMNIST's own train/val/test",
        notes=notes,
        parallel=False,
    )
