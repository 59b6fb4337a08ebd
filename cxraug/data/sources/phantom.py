"""A procedural, chest-X-ray-like phantom set. NOT REAL DATA.

It exists so that the whole pipeline can be demonstrated and tested offline in seconds:
lung fields, ribs, spine, heart shadow and diaphragm, with a class-specific finding per
class (a larger heart for Cardiomegaly, a bright blob for Mass, a blunted angle for
Effusion...). Class frequencies follow NIH's full single-label distribution, with a floor
so that every class exists in every split. Each image is drawn from its own seed, so the
set is identical for a seed whatever the number of workers.
"""

from __future__ import annotations

import numpy as np

from cxraug.classes import NIH_CLASSES, NIH_SINGLE_LABEL_COUNTS
from cxraug.data.records import Record, SourceScan
from cxraug.data.splits import carve_patients
from cxraug.errors import UserError
from cxraug.rng import derive_seed

PHANTOM_NOTE = "synthetic phantom images, procedurally generated: NOT REAL DATA"
FLOOR = 12  # images per class at least: a few patients, so each split gets one


def class_counts(n: int, classes: list[str], floor: int) -> dict[str, int]:
    """NIH's single-label frequencies scaled to ``n`` images, each class at least ``floor``."""
    total = sum(NIH_SINGLE_LABEL_COUNTS[c] for c in classes)
    counts = {c: max(floor, round(n * NIH_SINGLE_LABEL_COUNTS[c] / total)) for c in classes}
    # Give the excess (from the floors) back from the largest class.
    biggest = max(counts, key=counts.get)
    counts[biggest] = max(floor, counts[biggest] - (sum(counts.values()) - n))
    return counts


def _ellipse(yy: np.ndarray, xx: np.ndarray, cy: float, cx: float, ry: float, rx: float) -> np.ndarray:
    """Soft-edged ellipse mask in [0, 1]."""
    d = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2
    return np.clip((1.0 - d) * 4.0, 0.0, 1.0)


def _blur(img: np.ndarray, passes: int) -> np.ndarray:
    for _ in range(passes):
        img = (img + np.roll(img, 1, 0) + np.roll(img, -1, 0) + np.roll(img, 1, 1) + np.roll(img, -1, 1)) / 5
    return img


def render(label: str, size: int, seed: int) -> np.ndarray:
    """Draw one phantom image of ``label`` (uint8, size x size)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64) / size
    j = lambda s: rng.normal(0.0, s)
    img = np.full((size, size), 0.08)
    img += 0.45 * _ellipse(yy, xx, 0.55 + j(0.01), 0.5, 0.55, 0.44 + j(0.01))  # body
    img += 0.25 * np.clip(1 - np.abs(xx - 0.5) / 0.05, 0, 1) * (yy > 0.05)  # spine
    lung_ry, lung_rx, lung_cy = 0.30 + j(0.015), 0.15 + j(0.01), 0.47 + j(0.01)
    dark = 0.32
    if label == "Emphysema":
        lung_ry, lung_rx, dark = lung_ry * 1.1, lung_rx * 1.08, 0.42
    left = _ellipse(yy, xx, lung_cy, 0.32, lung_ry, lung_rx)  # image left = patient right
    right_scale = 0.75 if label == "Atelectasis" else 1.0
    right = _ellipse(yy, xx, lung_cy - 0.02 * (1 - right_scale), 0.68, lung_ry * right_scale, lung_rx)
    lungs = np.maximum(left, right)
    img -= dark * lungs
    ribs = 0.5 + 0.5 * np.sin((yy * 9.5 + 1.2 * (xx - 0.5) ** 2) * 2 * np.pi + j(0.3))
    img += 0.08 * (ribs > 0.82) * lungs
    heart_r = (0.14 if label != "Cardiomegaly" else 0.21) + j(0.008)
    img += 0.30 * _ellipse(yy, xx, 0.62, 0.56, heart_r * 0.85, heart_r)  # heart shadow
    img += 0.35 * np.clip((yy - (0.80 + j(0.01))) * 12, 0, 1) * (np.abs(xx - 0.5) < 0.42)  # diaphragm
    cy, cx = 0.35 + 0.3 * rng.random(), (0.3 if rng.random() < 0.5 else 0.68) + j(0.02)
    if label == "Mass":
        img += 0.35 * _ellipse(yy, xx, cy, cx, 0.07, 0.07)
    elif label == "Nodule":
        img += 0.35 * _ellipse(yy, xx, cy, cx, 0.028, 0.028)
    elif label == "Effusion":
        img += 0.30 * np.clip((yy - 0.62) * 6, 0, 1) * (right if cx > 0.5 else left)
    elif label == "Infiltration":
        img += 0.18 * _blur(rng.random((size, size)), 3) * lungs * _ellipse(yy, xx, cy, cx, 0.2, 0.14)
    elif label == "Consolidation":
        img += 0.30 * _ellipse(yy, xx, cy, cx, 0.11, 0.09)
    elif label == "Pneumonia":
        img += 0.22 * _blur(rng.random((size, size)), 2) * _ellipse(yy, xx, 0.6, cx, 0.14, 0.1)
    elif label == "Edema":
        img += 0.20 * lungs * np.exp(-(((xx - 0.5) / 0.2) ** 2 + ((yy - 0.5) / 0.25) ** 2))
    elif label == "Pneumothorax":
        side = right if cx > 0.5 else left
        img -= 0.15 * side * (np.abs(xx - 0.5) > 0.27)  # collapsed lung edge: no markings
    elif label == "Fibrosis":
        net = (np.sin(xx * 70 + j(1)) * np.sin(yy * 70 + j(1))) > 0.7
        img += 0.12 * net * lungs * (yy > 0.45)
    elif label == "Pleural_Thickening":
        img += 0.25 * np.clip(lungs * (1 - lungs) * 4, 0, 1)
    elif label == "Hernia":
        img += 0.30 * _ellipse(yy, xx, 0.76, 0.5 + j(0.02), 0.07, 0.1)
    img = _blur(img, max(1, size // 64))
    img += rng.normal(0.0, 0.025, img.shape)
    return np.clip(np.rint(img * 255 / 0.75), 0, 255).astype(np.uint8)


class PhantomLoader:
    def __init__(self, size: int, seed: int) -> None:
        self.size, self.seed = size, seed

    def __call__(self, record: Record) -> np.ndarray:
        return render(record.label, self.size, derive_seed(self.seed, record.index, scheme="affine", stride=1_000_003))


def scan_phantom(
    n: int, size: int, classes: list[str], seed: int, test_fraction: float, floor: int = FLOOR
) -> SourceScan:
    if n < floor * len(classes):
        raise UserError(
            f"--n {n} is too small for {len(classes)} classes: the phantom set has at least {floor} images "
            f"per class so that each reaches train, val and test; use --n {floor * len(classes)} or more"
        )
    counts = class_counts(n, classes, floor)
    rng = np.random.default_rng(seed)
    records: list[Record] = []
    patient = 0
    for cls in [c for c in NIH_CLASSES if c in classes]:
        left = counts[cls]
        while left > 0:  # 1 to 3 images per patient, as follow-up visits
            k = min(left, int(rng.integers(1, 4)))
            for _ in range(k):
                idx = len(records)
                records.append(
                    Record(
                        image_id=f"phantom_{idx:06d}.png",
                        patient_id=f"P{patient:05d}",
                        label=cls,
                        split="train_val",
                        source_file=f"phantom:seed={seed}:index={idx}",
                        view="PA",
                        age=int(rng.integers(20, 80)),
                        sex="MF"[int(rng.integers(0, 2))],
                        index=idx,
                    )
                )
            patient += 1
            left -= k
    records = carve_patients(records, test_fraction, seed + 1, "test", "train_val")
    return SourceScan(
        name="phantom",
        classes=[c for c in NIH_CLASSES if c in classes],
        records=records,
        loader=PhantomLoader(size, seed),
        real_data=False,
        split_method=f"random by patient (test {test_fraction:.0%})",
        notes=[PHANTOM_NOTE],
    )
