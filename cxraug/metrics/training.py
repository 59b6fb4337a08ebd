"""FID/KID during training: a small, fixed-size sample, overall only, on the val split."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from cxraug.data.prepared import PreparedData, fingerprint
from cxraug.metrics.cache import FeatureCache, default_cache_dir
from cxraug.metrics.registry import DEFAULT_MIN_IMAGES, MetricOptions, compute_metrics
from cxraug.metrics.score import proportional_counts, real_features
from cxraug.metrics.sources import sample_class


def fid_during_training(
    generator: Any,
    data: PreparedData,
    split: str = "val",
    n: int = 500,
    seed: int = 0,
    device: Any = None,
    cache_dir: Path | None = None,
    batch_size: int = 64,
    extractor: Any = None,
    weights_path: Path | str | None = None,
    kid_subsets: int = 50,
    reporter: Any = None,
) -> dict[str, Any]:
    """Overall FID and KID of ``generator`` against up to ``n`` real images of ``split``.

    The real side is a fixed subset (seed 0, the same at every step) of the split's images of
    the generator's classes; the synthetic side has as many images, in the same class
    proportions, drawn with ``seed`` (the same noise at every step, so curves are smooth).
    Real features are cached on disk (shared with ``cxraug score``). Pass ``extractor`` (from
    ``load_feature_extractor``) to skip reloading the network at every call. Never test.
    """
    from cxraug.metrics.features import load_feature_extractor

    t0 = time.perf_counter()
    if split == "test":
        raise ValueError("training must not look at the test split; score on val")
    if extractor is None:
        extractor = load_feature_extractor(weights_path, device)
    cache = FeatureCache(cache_dir or default_cache_dir(data.root))
    fp = fingerprint(data)
    classes = [c for c in data.classes if c in generator.spec.classes]
    real_sub = {c: real_features(data, split, c, extractor, cache, batch_size, reporter, fp)[1] for c in classes}
    sizes = {c: len(f) for c, f in real_sub.items()}
    if sum(sizes.values()) > n:  # a fixed subset (seed 0): the same real side at every step
        counts = proportional_counts(sizes, sizes, n)
        pick = np.random.default_rng(0)
        real_sub = {c: f[np.sort(pick.choice(len(f), counts[c], replace=False))] for c, f in real_sub.items()}
    real = np.concatenate(list(real_sub.values())) if real_sub else np.empty((0, extractor.num_features))
    n_fake = {c: len(f) for c, f in real_sub.items()}
    fake_parts = []
    for c in classes:
        if n_fake[c]:
            label = list(generator.spec.classes).index(c)
            imgs = sample_class(generator, label, n_fake[c], seed, batch_size)
            fake_parts.append(extractor.extract(imgs, batch_size))
    fake = np.concatenate(fake_parts) if fake_parts else np.empty((0, extractor.num_features))
    described = extractor.describe()
    out: dict[str, Any] = {
        "split": split,
        "size": data.size,
        "n_real": len(real),
        "n_fake": len(fake),
        "extractor": extractor.name,
        "weights_sha256": described.get("weights_sha256"),
    }
    if min(len(real), len(fake)) < DEFAULT_MIN_IMAGES:
        out["status"] = f"too few images (n_real={len(real)}, n_fake={len(fake)} < {DEFAULT_MIN_IMAGES})"
    else:
        out.update(compute_metrics(["fid", "kid"], real, fake, MetricOptions(kid_subsets=kid_subsets, seed=seed)))
        out["status"] = "ok"
    out["seconds"] = round(time.perf_counter() - t0, 2)
    return out
