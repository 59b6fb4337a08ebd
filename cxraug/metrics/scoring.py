"""The steps every score is made of, written once for ``cxraug score``, ``compare`` and the
training loop's periodic evaluation: drawing and extracting synthetic images, the proportional
class mix of the pooled ("all") row, the fixed real subset of a small evaluation, and the
minimum-images rule; and the real side they are all scored against (``RealSide``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cxraug.data.prepared import PreparedData
from cxraug.metrics.cache import FeatureCache
from cxraug.metrics.real import real_features
from cxraug.metrics.registry import MetricOptions, compute_metrics, metrics_in
from cxraug.metrics.sources import FakeSource
from cxraug.progress import NullReporter, Reporter

if TYPE_CHECKING:
    from cxraug.metrics.features import FeatureExtractor

OVERALL = "all"  # the pooled row's class: every scored class at the real class proportions

Pair = tuple[np.ndarray, np.ndarray]  # uint8 images, features


@dataclass
class RealSide:
    """The real images and features of one (dataset, split, classes, extractor): computed once,
    then shared by every synthetic source scored against them (``score``, ``compare``).
    Train (and val, when scoring on test) features for memorization are loaded on first use."""

    data: PreparedData
    split: str
    classes: list[str]
    extractor: FeatureExtractor
    cache: FeatureCache
    cache_dir: Path | None
    fingerprint: str
    batch_size: int
    real: dict[str, Pair]  # per class: images and features of ``split``
    other: dict[tuple[str, str], Pair] = field(default_factory=dict)  # (split, class) loaded for memorization

    def features_of(self, split: str, class_name: str, reporter: Reporter | None = None) -> Pair:
        if split == self.split and class_name in self.real:
            return self.real[class_name]
        key = (split, class_name)
        if key not in self.other:
            self.other[key] = real_features(
                self.data, split, class_name, self.extractor, self.cache, self.batch_size, reporter, self.fingerprint
            )
        return self.other[key]

    def base(self) -> dict[str, Any]:
        """What every row carries about the comparison itself."""
        return {
            "split": self.split,
            "size": self.data.size,
            "extractor": self.extractor.name,
            "weights_sha256": self.extractor.describe().get("weights_sha256"),
        }


def too_few(n_real: int, n_fake: int, min_images: int) -> str | None:
    """Why a row gets no number (fewer than ``min_images`` on a side), or None when it gets one."""
    if min(n_real, n_fake) < min_images:
        return f"too few images (n_real={n_real}, n_fake={n_fake} < {min_images})"
    return None


def extract(
    extractor: FeatureExtractor, images: np.ndarray, batch_size: int, reporter: Reporter | None, what: str
) -> np.ndarray:
    """Features of uint8 images (an empty set gives an empty feature array, no network call)."""
    if len(images) == 0:
        return np.empty((0, extractor.num_features), np.float32)
    return extractor.extract(images, batch_size, reporter or NullReporter(), what=what)


def draw_features(
    source: FakeSource,
    class_name: str,
    n: int,
    extractor: FeatureExtractor,
    batch_size: int,
    reporter: Reporter | None = None,
) -> Pair:
    """Up to n synthetic images of a class and their features."""
    imgs = source.draw(class_name, n, reporter or NullReporter())
    return imgs, extract(extractor, imgs, batch_size, reporter, f"synthetic {class_name} ({len(imgs)})")


def proportional_counts(
    real_counts: dict[str, int], available: dict[str, int], total: int | None = None
) -> dict[str, int]:
    """Per-class counts in the real proportions, as many as ``available`` allows (largest remainder)."""
    n_real = sum(real_counts.values())
    if n_real == 0:
        return dict.fromkeys(real_counts, 0)
    share = {c: k / n_real for c, k in real_counts.items()}
    limit = min((available[c] / s for c, s in share.items() if s > 0), default=0.0)
    target = limit if total is None else min(total, limit)
    raw = {c: target * s for c, s in share.items()}
    counts = {c: int(np.floor(v)) for c, v in raw.items()}
    left = round(target) - sum(counts.values())
    for c in sorted(raw, key=lambda c: raw[c] - counts[c], reverse=True)[: max(0, left)]:
        if counts[c] < available[c]:
            counts[c] += 1
    return counts


def fixed_subset(sizes: dict[str, int], n: int) -> dict[str, np.ndarray] | None:
    """Positions of at most ``n`` real images in the class proportions, a seed-0 choice (the same
    real side at every training-time evaluation); None when all of them fit."""
    if sum(sizes.values()) <= n:
        return None
    counts = proportional_counts(sizes, sizes, n)
    pick = np.random.default_rng(0)
    return {c: np.sort(pick.choice(k, counts[c], replace=False)) for c, k in sizes.items()}


def pooled(per_class: dict[str, np.ndarray], counts: dict[str, int] | None = None) -> np.ndarray:
    """The pooled row's set: each class's array (its first ``counts[c]``), concatenated in order."""
    return np.concatenate([a if counts is None else a[: counts[c]] for c, a in per_class.items()])


def metric_row(
    names: list[str],
    real: np.ndarray,
    fake: np.ndarray,
    options: MetricOptions,
    min_images: int,
    base: dict[str, Any],
) -> dict[str, Any]:
    """One row of the feature-pair metrics (the Inception space): sizes, then the numbers and
    status "ok", or the too-few reason alone."""
    row = {**base, "n_real": len(real), "n_fake": len(fake)}
    reason = too_few(len(real), len(fake), min_images)
    if reason:
        row["status"] = reason
        return row
    row.update(compute_metrics(metrics_in(names, "inception"), real, fake, options))
    row["status"] = "ok"
    return row
