"""Decoding any chest X-ray file to 8-bit grey, and resizing it to a square."""

from __future__ import annotations

import numpy as np
from PIL import Image

# Antialiased downsampling (PIL widens the filter support by the scale factor).
RESAMPLE = Image.Resampling.LANCZOS


def pil_to_grey_u8(img: Image.Image) -> np.ndarray:
    """Convert any PIL mode to an HxW uint8 array, scaling 16-bit data instead of clipping."""
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I", "I;16N"):
        arr = np.asarray(img, dtype=np.float64)
        hi = 65535.0 if (mode.startswith("I;16") or arr.max() > 255) else 255.0
        return np.clip(np.rint(arr * (255.0 / hi)), 0, 255).astype(np.uint8)
    if mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        scale = 255.0 / (hi - lo) if hi > lo else 0.0
        return np.clip(np.rint((arr - lo) * scale), 0, 255).astype(np.uint8)
    if mode == "L":
        return np.asarray(img, dtype=np.uint8)
    if mode in ("LA", "La"):
        return np.asarray(img.getchannel(0), dtype=np.uint8)
    # RGB, RGBA, P, CMYK...: NIH's RGB(A) files carry identical channels, so luminance of
    # the colour part is the grey value; alpha is ignored.
    if mode in ("RGBA", "RGBa", "PA"):
        img = img.convert("RGB")
    return np.asarray(img.convert("L"), dtype=np.uint8)


def center_square(arr: np.ndarray) -> np.ndarray:
    h, w = arr.shape
    if h == w:
        return arr
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    return arr[top : top + s, left : left + s]


def resize_square(arr: np.ndarray, size: int) -> np.ndarray:
    """Centre-crop to a square, then antialiased resize to ``size`` x ``size``."""
    arr = center_square(arr)
    if arr.shape[0] == size:
        return np.ascontiguousarray(arr)
    img = Image.fromarray(arr, mode="L")
    return np.asarray(img.resize((size, size), RESAMPLE), dtype=np.uint8)


def read_grey(path: str) -> np.ndarray:
    """Decode an image file to HxW uint8 grey. Raises OSError/ValueError on a bad file."""
    with Image.open(path) as img:
        img.load()
        return pil_to_grey_u8(img)


class FileLoader:
    """Picklable loader for sources whose records point at image files."""

    def __call__(self, record) -> np.ndarray:
        return read_grey(record.source_file)
