"""Every PIL mode a chest X-ray file comes in becomes correct 8-bit grey; resizing is antialiased."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cxraug.data.imageio import read_grey, resize_square


def _save(tmp_path: Path, img: Image.Image, name: str = "x.png") -> str:
    path = tmp_path / name
    img.save(path)
    return str(path)


def test_16_bit_png_is_scaled_not_clipped(tmp_path: Path) -> None:
    values = np.array([[0, 257, 1000, 32768, 65535, 40000]], dtype=np.uint16)
    path = _save(tmp_path, Image.fromarray(values))
    with Image.open(path) as im:
        assert im.mode == "I;16"
    grey = read_grey(path)
    assert grey.dtype == np.uint8
    np.testing.assert_array_equal(grey, np.rint(values * (255 / 65535)).astype(np.uint8))
    assert grey.tolist() == [[0, 1, 4, 128, 255, 156]]  # clipping would give [0, 255, 255, ...]


def test_16_bit_x_ray_keeps_its_contrast(tmp_path: Path) -> None:
    ramp = np.linspace(0, 65535, 256 * 256).reshape(256, 256).astype(np.uint16)
    grey = read_grey(_save(tmp_path, Image.fromarray(ramp)))
    assert grey.min() == 0 and grey.max() == 255 and len(np.unique(grey)) == 256


def test_32_bit_integer_mode_with_16_bit_values(tmp_path: Path) -> None:
    values = np.array([[0, 1000, 65535]], dtype=np.int32)
    path = _save(tmp_path, Image.fromarray(values, mode="I"), "x.tif")
    assert read_grey(path).tolist() == [[0, 4, 255]]


def _grey(size: int = 40) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size]
    return ((yy * 5 + xx * 3) % 256).astype(np.uint8)


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA", "LA", "P"])
def test_grey_stored_in_any_mode_reads_back_identical(tmp_path: Path, mode: str) -> None:
    grey = _grey()
    img = Image.fromarray(grey, "L").convert(mode)
    if mode in ("RGBA", "LA"):  # alpha must be ignored, even where fully transparent
        alpha = np.zeros_like(grey)
        alpha[:, 20:] = 255
        img.putalpha(Image.fromarray(alpha, "L"))
    np.testing.assert_array_equal(read_grey(_save(tmp_path, img)), grey)


def test_colour_rgb_becomes_luminance(tmp_path: Path) -> None:
    rgb = np.zeros((2, 2, 3), np.uint8)
    rgb[0, 0] = (255, 0, 0)
    rgb[0, 1] = (0, 255, 0)
    rgb[1, 0] = (0, 0, 255)
    rgb[1, 1] = (100, 100, 100)
    grey = read_grey(_save(tmp_path, Image.fromarray(rgb, "RGB")))
    assert grey.tolist() == [[76, 150], [29, 100]]  # ITU-R 601 luma, as PIL's convert("L")


def test_palette_image_uses_its_palette(tmp_path: Path) -> None:
    img = Image.new("P", (3, 1))
    img.putpalette([0, 0, 0, 200, 200, 200, 30, 30, 30] + [0] * (256 * 3 - 9))
    img.putdata([2, 1, 0])
    assert read_grey(_save(tmp_path, img)).tolist() == [[30, 200, 0]]


def test_resize_is_antialiased_lanczos_after_centre_crop() -> None:
    rng = np.random.default_rng(0)
    wide = rng.integers(0, 256, (100, 160), dtype=np.uint8)
    out = resize_square(wide, 50)
    square = wide[:, 30:130]
    expected = np.asarray(Image.fromarray(square, "L").resize((50, 50), Image.Resampling.LANCZOS))
    np.testing.assert_array_equal(out, expected)
    # Antialiased: a 1-pixel checkerboard averages to mid grey instead of aliasing.
    checker = (np.indices((256, 256)).sum(0) % 2 * 255).astype(np.uint8)
    small = resize_square(checker, 32)
    assert np.abs(small.astype(int) - 128).max() <= 2


def test_unreadable_file_raises(tmp_path: Path) -> None:
    path = tmp_path / "bad.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(OSError):
        read_grey(str(path))


def test_real_rgba_nih_file(nih_dir: Path) -> None:
    path = nih_dir / "images_002" / "images" / "00000004_000.png"
    with Image.open(path) as im:
        assert (im.mode, im.size) == ("RGBA", (1024, 1024))
        rgba = np.asarray(im)
    assert (rgba[..., 0] == rgba[..., 1]).all() and (rgba[..., 0] == rgba[..., 2]).all()
    np.testing.assert_array_equal(read_grey(str(path)), rgba[..., 0])
