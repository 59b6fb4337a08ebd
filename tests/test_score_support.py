"""Helpers for the score/metrics tests (no tests here): stand-in generators and a cheap
feature extractor for the plumbing tests (the Inception tests use the real network)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from cxraug.accel import RunAccelerator
from cxraug.data.prepared import open_prepared
from cxraug.generator import DataSpec, Generator, PluginConfig


class PixelProjection:
    """A fast stand-in for Inception: a fixed random projection of the pixels (32 features).
    Counts its calls so tests can see cache hits."""

    name = "test-pixel-projection"
    num_features = 32

    def __init__(self, size: int, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.proj = rng.standard_normal((size * size, self.num_features)).astype(np.float32) / size
        self.seed = seed
        self.calls = 0
        self.images_seen = 0

    @property
    def identity(self) -> str:
        return f"{self.name}-{self.seed}"

    def describe(self) -> dict[str, Any]:
        return {"extractor": self.name, "weights_sha256": f"seed{self.seed}", "weights_reference": False}

    def extract(self, images: np.ndarray, batch_size: int = 64, reporter: Any = None, what: str = "") -> np.ndarray:
        self.calls += 1
        self.images_seen += len(images)
        flat = np.asarray(images, np.float32).reshape(len(images), -1) / 255
        return flat @ self.proj


def use_pixel_projection(monkeypatch, data_root: Path) -> PixelProjection:
    """Every command's feature extractor becomes a PixelProjection (no Inception weights needed)."""
    from cxraug.data.prepared import open_prepared
    from cxraug.metrics import features, inception

    ex = PixelProjection(open_prepared(data_root).size)
    monkeypatch.setattr(inception, "locate_inception_weights", lambda path=None: "test-weights")
    monkeypatch.setattr(features, "load_feature_extractor", lambda weights=None, device=None: ex)
    return ex


class ArrayGenerator(Generator):
    """A 'generator' that returns stored uint8 images of the asked label (drawn at random from
    ``pool[label]`` with the given torch.Generator), or uniform noise where ``noise`` is set."""

    name = "test-array"
    Config = PluginConfig

    def __init__(self, spec: DataSpec, pool: dict[int, np.ndarray] | None = None, noise: bool = False) -> None:
        self.pool, self.noise = pool or {}, noise
        super().__init__(PluginConfig(), spec)

    def build(self) -> None:
        pass

    def setup(self, accelerator: RunAccelerator) -> None:
        raise NotImplementedError("test double: sampling only")

    def train_step(self, images: torch.Tensor, labels: torch.Tensor, accelerator: RunAccelerator) -> dict[str, float]:
        raise NotImplementedError("test double: sampling only")

    def state(self) -> dict[str, Any]:
        return {}

    def load_state(self, state: dict[str, Any]) -> None:
        pass

    def export_tensors(self) -> dict[str, torch.Tensor]:
        return {}

    def load_export_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        pass

    def sample(
        self, labels: torch.Tensor, generator: torch.Generator | None = None, options: Any = None
    ) -> torch.Tensor:
        s = self.spec.size
        if self.noise:
            return torch.rand(len(labels), 1, s, s, generator=generator) * 2 - 1
        out = torch.empty(len(labels), 1, s, s)
        for i, lab in enumerate(labels.tolist()):
            imgs = self.pool[lab]
            j = int(torch.randint(len(imgs), (1,), generator=generator))
            out[i, 0] = torch.from_numpy(imgs[j].astype(np.float32)) / 127.5 - 1
        return out


def copying_generator(data_root: Path) -> ArrayGenerator:
    """Returns training images of the asked class: the memorization check must flag it."""
    data = open_prepared(data_root)
    imgs, labels = np.asarray(data.images("train")), data.labels("train")
    pool = {i: imgs[labels == i] for i in range(len(data.classes)) if (labels == i).any()}
    return ArrayGenerator(DataSpec(tuple(data.classes), data.size), pool)


def noise_generator(data_root: Path) -> ArrayGenerator:
    data = open_prepared(data_root)
    return ArrayGenerator(DataSpec(tuple(data.classes), data.size), noise=True)


def write_synthetic_set(out: Path, images: dict[str, np.ndarray], classes: list[str], data_root: Path) -> Path:
    """A set in `cxraug synth`'s format (PNGs, manifest.csv, provenance.json) from given images."""
    import csv
    import hashlib
    import io

    from PIL import Image

    from cxraug.data.prepared import fingerprint
    from cxraug.fsutil import write_json
    from cxraug.synthset import MANIFEST, MANIFEST_COLUMNS, PROVENANCE

    rows = []
    for name, imgs in images.items():
        (out / "images" / name).mkdir(parents=True, exist_ok=True)
        for i, img in enumerate(imgs):
            buf = io.BytesIO()
            Image.fromarray(np.asarray(img, np.uint8), mode="L").save(buf, format="PNG")
            rel = f"images/{name}/{name}_{i:06d}.png"
            (out / rel).write_bytes(buf.getvalue())
            rows.append({"file": rel, "class": name, "label": classes.index(name), "seed": 0, "run": "r",
                         "step": 7, "plugin": "test", "checksum": hashlib.sha256(buf.getvalue()).hexdigest()})  # fmt: skip
    with open(out / MANIFEST, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=MANIFEST_COLUMNS)
        w.writeheader()
        w.writerows(rows)
    data = open_prepared(data_root)
    size = int(next(iter(images.values())).shape[-1])
    prov = {"run": "r", "plugin": "test", "step": 7, "classes": classes, "size": size, "complete": True,
            "data": {"path": str(Path(data_root).resolve()), "name": data.name, "fingerprint": fingerprint(data)}}  # fmt: skip
    write_json(out / PROVENANCE, prov)
    return out


def train_images(data_root: Path, class_name: str, n: int) -> np.ndarray:
    data = open_prepared(data_root)
    idx = np.flatnonzero(data.labels("train") == data.classes.index(class_name))[:n]
    return np.asarray(data.images("train")[idx])
