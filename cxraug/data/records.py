"""What a source hands to ``prepare``: one Record per image, plus a picklable image loader."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

SPLITS: tuple[str, ...] = ("train", "val", "test")


@dataclass(frozen=True)
class Record:
    image_id: str
    patient_id: str
    label: str
    split: str  # "train", "val", "test" — or "train_val" before validation is carved out
    source_file: str = ""
    orig_width: int = 0
    orig_height: int = 0
    view: str = ""
    age: float | None = None
    sex: str = ""
    index: int = 0  # position inside an in-memory source (npz, phantom)


# A loader turns a Record into an 8-bit grey image of any size; it must be picklable so
# that worker processes can run it.
Loader = Callable[[Record], np.ndarray]


@dataclass
class SourceScan:
    """Everything a source found, before any pixel is decoded."""

    name: str
    classes: list[str]
    records: list[Record]
    loader: Loader
    real_data: bool = True
    split_method: str = ""
    missing: dict[str, int] = field(default_factory=dict)  # listed but not on disk, per class
    notes: list[str] = field(default_factory=list)
    parallel: bool = True  # False where the loader holds big arrays (cheaper in-process)
