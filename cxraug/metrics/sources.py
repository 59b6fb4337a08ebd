"""Where synthetic images come from: a generator sampled now, or a set written by ``cxraug synth``.

Either way they arrive as 8-bit grey N x S x S arrays, the form real images have, so both
sides go through the feature network identically (FID's uint8 quantization).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from cxraug.errors import UserError
from cxraug.progress import NullReporter, Reporter

if TYPE_CHECKING:
    from cxraug.data.prepared import PreparedData
    from cxraug.generator import Generator
    from cxraug.synthset import SyntheticSet

Draw = Callable[[str, int, Reporter], np.ndarray]


@dataclass
class FakeSource:
    """``draw(class_name, n, reporter)`` returns up to n uint8 images of that class."""

    classes: list[str]  # classes this source can give
    size: int
    draw: Draw
    info: dict[str, Any] = field(default_factory=dict)  # recorded with the results
    counts: dict[str, int] | None = None  # images per class where the source is finite (a folder)

    def drawn(self, class_name: str, n: int) -> int:
        """How many images ``draw(class_name, n)`` gives (at most n)."""
        return n if self.counts is None else min(n, self.counts.get(class_name, 0))


def class_seed(seed: int, label: int) -> int:
    """Per-class noise seed: a class's images do not depend on which other classes are scored."""
    from cxraug.rng import derive_seed

    return derive_seed(seed, label, scheme="numpy")


def sample_class(
    generator: Generator,
    label: int,
    n: int,
    seed: int,
    batch_size: int,
    reporter: Reporter | None = None,
    what: str = "",
    options: Any = None,
) -> np.ndarray:
    """n images of one label from a generator, as uint8 (rounded from [-1, 1])."""
    import torch

    from cxraug.data.dataset import to_uint8

    reporter = reporter or NullReporter()
    rng = torch.Generator().manual_seed(class_seed(seed, label))
    size = int(generator.spec.size)
    out = np.empty((n, size, size), dtype=np.uint8)
    with reporter.task(f"sampling {what}".strip(), total=n) as advance, torch.no_grad():
        for i in range(0, n, batch_size):
            k = min(batch_size, n - i)
            labels = torch.full((k,), label, dtype=torch.long)  # on the CPU, as synth passes them
            imgs = generator.sample(labels, generator=rng, options=options)
            if tuple(imgs.shape) != (k, 1, size, size):
                raise UserError(
                    f"generator returned images of shape {tuple(imgs.shape)}, expected {(k, 1, size, size)}; "
                    "the run's export does not match its plugin"
                )
            if not torch.isfinite(imgs).all():
                raise UserError("generator produced NaN/inf images; the run diverged, score an earlier checkpoint")
            out[i : i + k] = to_uint8(imgs)
            advance(k)
    return out


def generator_source(
    generator: Generator, seed: int = 0, batch_size: int = 64, options: Any = None, info: dict | None = None
) -> FakeSource:
    classes = list(generator.spec.classes)

    def draw(class_name: str, n: int, reporter: Reporter) -> np.ndarray:
        label = classes.index(class_name)
        return sample_class(generator, label, n, seed, batch_size, reporter, what=class_name, options=options)

    return FakeSource(classes=classes, size=int(generator.spec.size), draw=draw, info=dict(info or {}))


def images_source(synset: SyntheticSet) -> FakeSource:
    """A synthetic set (cxraug.synthset.SyntheticSet): its first n images of each class."""
    counts = {str(c): int(k) for c, k in synset.manifest()["class"].value_counts().items()}
    classes = [c for c in synset.classes if c in counts]

    def draw(class_name: str, n: int, reporter: Reporter) -> np.ndarray:
        imgs, _ = synset.load(classes=[class_name], limit_per_class=n)
        if imgs.shape[1:] != (synset.size, synset.size):
            raise UserError(f"{synset.root}: images of {class_name} are not {synset.size}px as provenance says")
        return imgs

    prov = synset.provenance
    info = {"images": str(synset.root), "run": prov.get("run"), "step": prov.get("step"), "plugin": prov.get("plugin")}
    return FakeSource(classes=classes, size=synset.size, draw=draw, info=info, counts=counts)


def train_images_source(data: PreparedData, seed: int = 0) -> FakeSource:
    """The real-vs-real floor's stand-in for a generator: real *training* images of each class
    of a prepared dataset (``PreparedData``), a seeded choice of up to n, in stored order. Scored
    against the split's images as a generator is, at the same n, it gives the value a perfect
    generator would get from finite samples (FID's bias at n)."""
    images, labels = data.images("train"), data.labels("train")
    counts = {c: int((labels == i).sum()) for i, c in enumerate(data.classes)}

    def draw(class_name: str, n: int, reporter: Reporter) -> np.ndarray:
        idx = np.flatnonzero(labels == data.classes.index(class_name))
        pick = np.sort(np.random.default_rng(seed).permutation(idx)[: min(n, len(idx))])
        return np.asarray(images[pick])

    return FakeSource(classes=list(data.classes), size=data.size, draw=draw, info={"real": "train"}, counts=counts)
