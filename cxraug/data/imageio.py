"""Decoding any chest X-ray file to 8-bit grey, and resizing it to a square.

Images stay Pillow images until the small resized result: no full-size array copies on the
hot path (a 1024 px PNG costs ~20 ms to decode and ~10 ms to resize; copies would add ~5%).
"""

from __future__ import annotations

import numpy as np
from PIL import Image

# Antialiased downsampling (PIL widens the filter support by the scale factor).
RESAMPLE = Image.Resampling.LANCZOS
SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")

GreyImage = np.ndarray | Image.Image  # HxW uint8 array, or a Pillow image in mode "L"
# What decoding a damaged, truncated, hostile or absent file raises (Pillow reports some broken
# PNG chunks as SyntaxError, an image too large to be safe as DecompressionBombError). Anything
# else out of a decode is a bug, and shows its traceback.
BAD_FILE_ERRORS: tuple[type[Exception], ...] = (
    OSError,
    ValueError,
    SyntaxError,
    EOFError,
    Image.DecompressionBombError,
)


def pil_to_grey(img: Image.Image) -> Image.Image:
    """Any Pillow mode -> mode "L", scaling 16-bit data instead of clipping it."""
    mode = img.mode
    if mode == "L":
        return img
    if mode in SIXTEEN_BIT_MODES:
        arr = np.asarray(img, dtype=np.float64)
        # I;16 is 16-bit by definition; a 32-bit "I" image is 16-bit data if it exceeds 8 bits.
        hi = 65535.0 if (mode.startswith("I;16") or arr.max() > 255) else 255.0
        return Image.fromarray(np.clip(np.rint(arr * (255.0 / hi)), 0, 255).astype(np.uint8), mode="L")
    if mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        scale = 255.0 / (hi - lo) if hi > lo else 0.0
        return Image.fromarray(np.clip(np.rint((arr - lo) * scale), 0, 255).astype(np.uint8), mode="L")
    # RGB, RGBA, LA, P, PA, CMYK...: Pillow's "L" is the ITU-R 601 luminance of the colour part
    # and ignores alpha; NIH's RGB(A) files carry identical channels, so this is their grey.
    return img.convert("L")


def open_grey(path: str) -> Image.Image:
    """Decode an image file to a mode "L" Pillow image. Raises OSError/ValueError on a bad file."""
    with Image.open(path) as img:
        img.load()
        grey = pil_to_grey(img)
        return grey.copy() if grey is img else grey  # outlive the closed file


def read_grey(path: str) -> np.ndarray:
    """Decode an image file to HxW uint8 grey. Raises OSError/ValueError on a bad file."""
    return np.asarray(open_grey(path), dtype=np.uint8)


def grey_size(img: GreyImage) -> tuple[int, int]:
    """(width, height) of a grey array or image."""
    return img.size if isinstance(img, Image.Image) else (img.shape[1], img.shape[0])


def center_square(arr: np.ndarray) -> np.ndarray:
    h, w = arr.shape
    if h == w:
        return arr
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    return arr[top : top + s, left : left + s]


def resize_square(img: GreyImage, size: int) -> np.ndarray:
    """Centre-crop to a square, then antialiased resize to ``size`` x ``size`` (uint8 array)."""
    if not isinstance(img, Image.Image):
        img = Image.fromarray(np.ascontiguousarray(center_square(np.asarray(img, dtype=np.uint8))), mode="L")
    w, h = img.size
    if w != h:
        s = min(w, h)
        left, top = (w - s) // 2, (h - s) // 2
        img = img.crop((left, top, left + s, top + s))
    if img.size != (size, size):
        img = img.resize((size, size), RESAMPLE)
    return np.array(img, dtype=np.uint8)


class FileLoader:
    """Picklable loader for sources whose records point at image files."""

    def __call__(self, record) -> Image.Image:
        return open_grey(record.source_file)
