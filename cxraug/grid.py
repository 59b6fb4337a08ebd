"""Image grids with class names: one row per class (training samples, synth previews)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont


def class_grid(rows: list[np.ndarray], names: list[str], title: str = "", scale: int = 1) -> Image.Image:
    """``rows[i]``: uint8 k x S x S images of class ``names[i]``; returns a labelled grid."""
    font = ImageFont.load_default()
    size = rows[0].shape[-1] * scale
    k = max(len(r) for r in rows)
    label_w = 8 + 7 * max(len(n) for n in names)
    top = 16 if title else 0
    grid = Image.new("L", (label_w + k * (size + 2), top + len(rows) * (size + 2)), color=0)
    draw = ImageDraw.Draw(grid)
    if title:
        draw.text((4, 2), title, fill=255, font=font)
    for i, (imgs, name) in enumerate(zip(rows, names, strict=True)):
        y = top + i * (size + 2)
        draw.text((4, y + size // 2 - 6), name, fill=255, font=font)
        for j, img in enumerate(imgs):
            tile = Image.fromarray(np.asarray(img, dtype=np.uint8), mode="L")
            if scale != 1:
                tile = tile.resize((size, size), Image.Resampling.NEAREST)
            grid.paste(tile, (label_w + j * (size + 2), y))
    return grid


def save_png(img: Image.Image, path: Path) -> None:
    """Atomic PNG write."""
    import io

    from cxraug.fsutil import atomic_write_bytes

    buf = io.BytesIO()
    img.save(buf, format="PNG")
    atomic_write_bytes(path, buf.getvalue())
