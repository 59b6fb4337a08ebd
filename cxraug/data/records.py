"""What a source hands to ``prepare``: one Record per image, plus a picklable image loader."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from PIL import Image

SPLITS: tuple[str, ...] = ("train", "val", "test")


@dataclass(frozen=True, slots=True)  # slots: one per image, kept for the whole run
class Record:
    image_id: str
    patient_id: str
    label: str
    split: str  # "train", "val", "test" — or "train_val" before validation is carved out
    source_file: str = ""
    view: str = ""
    age: int | None = None  # years
    sex: str = ""
    index: int = 0  # position inside an in-memory source (npz, phantom)


# A loader turns a Record into an 8-bit grey image of any size (an HxW uint8 array, or a
# Pillow image in mode "L"); it must be picklable so that worker processes can run it.
Loader = Callable[[Record], "np.ndarray | Image.Image"]


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
