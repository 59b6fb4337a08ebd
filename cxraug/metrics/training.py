"""FID/KID during training: a small, fixed-size sample, overall only, on the val split (and,
where asked, label fidelity and FD_cxr with the reference classifier, on the same images)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from cxraug.data.prepared import PreparedData, fingerprint
from cxraug.metrics.cache import FeatureCache, default_cache_dir
from cxraug.metrics.real import real_features
from cxraug.metrics.registry import DEFAULT_MIN_IMAGES, MetricOptions, compute_metrics, metrics_in
from cxraug.metrics.score import proportional_counts
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
    metrics: list[str] | None = None,  # registry names; None: fid and kid
    reference: Any = None,  # a ReferenceClassifier, needed for fidelity / fd_cxr
) -> dict[str, Any]:
    """Overall FID and KID of ``generator`` against up to ``n`` real images of ``split``.

    The real side is a fixed subset (seed 0, the same at every step) of the split's images of
    the generator's classes; the synthetic side has as many images, in the same class
    proportions, drawn with ``seed`` (the same noise at every step, so curves are smooth).
    Real features are cached on disk (shared with ``cxraug score``). Pass ``extractor`` (from
    ``load_feature_extractor``) to skip reloading the network at every call. Never test.
    ``fidelity`` and ``fd_cxr`` (with ``reference``) use the same real and synthetic images.
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
    names = metrics or ["fid", "kid"]
    real_sub = {c: real_features(data, split, c, extractor, cache, batch_size, reporter, fp)[1] for c in classes}
    picks = {c: np.arange(len(f)) for c, f in real_sub.items()}
    sizes = {c: len(f) for c, f in real_sub.items()}
    if sum(sizes.values()) > n:  # a fixed subset (seed 0): the same real side at every step
        counts = proportional_counts(sizes, sizes, n)
        pick = np.random.default_rng(0)
        picks = {c: np.sort(pick.choice(len(f), counts[c], replace=False)) for c, f in real_sub.items()}
        real_sub = {c: f[picks[c]] for c, f in real_sub.items()}
    real = np.concatenate(list(real_sub.values())) if real_sub else np.empty((0, extractor.num_features))
    n_fake = {c: len(f) for c, f in real_sub.items()}
    fake_parts, fake_images = [], {}
    for c in classes:
        if n_fake[c]:
            label = list(generator.spec.classes).index(c)
            fake_images[c] = sample_class(generator, label, n_fake[c], seed, batch_size)
            fake_parts.append(extractor.extract(fake_images[c], batch_size))
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
        opts = MetricOptions(kid_subsets=kid_subsets, seed=seed)
        out.update(compute_metrics(metrics_in(names, "inception"), real, fake, opts))
        out["status"] = "ok"
        if metrics_in(names, "reference"):
            out.update(_with_reference(data, split, names, picks, fake_images, reference, cache, fp, opts, batch_size))
    out["seconds"] = round(time.perf_counter() - t0, 2)
    return out


def _with_reference(
    data: PreparedData,
    split: str,
    names: list[str],
    picks: dict[str, np.ndarray],
    fake_images: dict[str, np.ndarray],
    reference: Any,
    cache: FeatureCache,
    fp: str,
    opts: MetricOptions,
    batch_size: int,
) -> dict[str, Any]:
    """Overall fidelity / fd_cxr of the same real subset and synthetic images."""
    from cxraug.metrics.fidelity import class_labels, label_fidelity

    if reference is None:
        raise ValueError("fidelity and fd_cxr need the reference classifier (cxraug.metrics.reference.load_reference)")
    classes = list(fake_images)
    real = np.concatenate(
        [real_features(data, split, c, reference, cache, batch_size, None, fp)[1][picks[c]] for c in classes]
    )
    fake = np.concatenate([reference.extract(fake_images[c], batch_size) for c in classes])
    out: dict[str, Any] = {"reference_weights_sha256": reference.weights_sha256}
    if "fd_cxr" in names:
        out.update(compute_metrics(["fd_cxr"], real, fake, opts))
    if "fidelity" in names:
        fake_labels = np.concatenate([class_labels(data.classes, c, len(fake_images[c])) for c in classes])
        real_labels = np.concatenate([class_labels(data.classes, c, len(picks[c])) for c in classes])
        fid = label_fidelity(reference.probs(fake), fake_labels, reference.probs(real), real_labels)
        out.update({k: v for k, v in fid.items() if not k.endswith("_ci")})
    return out
