"""The real side of a score: one class's images in one split and their features, read from
the feature cache when it is valid. Scoring, fidelity and the training-time metrics all start
here."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from cxraug.data.prepared import PreparedData, fingerprint
from cxraug.metrics.cache import CacheKey, FeatureCache
from cxraug.progress import Reporter

if TYPE_CHECKING:
    from cxraug.metrics.features import FeatureExtractor


def real_features(
    data: PreparedData,
    split: str,
    class_name: str,
    extractor: FeatureExtractor,
    cache: FeatureCache,
    batch_size: int,
    reporter: Reporter | None = None,
    fp: str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images and features of one class in one split (features from the cache when valid)."""
    labels = data.labels(split)
    idx = np.flatnonzero(labels == data.classes.index(class_name))
    images = np.asarray(data.images(split)[idx]) if len(idx) else np.empty((0, data.size, data.size), np.uint8)
    if len(images) == 0:
        return images, np.empty((0, extractor.num_features), np.float32)
    key = CacheKey(fp or fingerprint(data), split, class_name, data.size, extractor.identity)
    return images, cache.features(key, images, extractor, batch_size, reporter)
