"""FID/KID during training: a small, fixed-size sample, overall only, on the val split (and,
where asked, label fidelity and FD_cxr with the reference classifier, on the same images).
``train-gen`` builds it as the loop's periodic evaluation (:func:`training_evaluation`): which
metrics may run under several processes, and the reference classifier, are decided here."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from cxraug.config import TrainConfig
from cxraug.data.prepared import PreparedData, fingerprint
from cxraug.errors import UserError
from cxraug.metrics.cache import FeatureCache, default_cache_dir
from cxraug.metrics.real import real_features
from cxraug.metrics.registry import DEFAULT_MIN_IMAGES, MetricOptions, compute_metrics, metrics_in
from cxraug.metrics.score import proportional_counts
from cxraug.metrics.sources import sample_class
from cxraug.train import PeriodicEvaluation


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


def check_training_metrics(train: TrainConfig) -> None:
    """Fail before any output exists when training-time scoring cannot run."""
    if train.fid_every:
        from cxraug.metrics.inception import locate_inception_weights

        locate_inception_weights()  # a clear "how to get them" line if the FID weights are absent


def training_reference(train: TrainConfig, data: PreparedData, state: Any) -> Any:
    """The reference classifier for training-time fidelity / fd_cxr (None when not asked): from
    the cache shared with `cxraug score`, or trained now, before the first step, on one process.
    ``state``: the process state (or Accelerator) of the run."""
    from cxraug.metrics.reference import ReferenceConfig, load_reference

    if not metrics_in(train.fid_metrics, "reference"):
        return None
    if state.num_processes > 1:  # said before the first step, not after an hour of training
        raise UserError(
            "training-time fidelity / fd_cxr run on one process: drop them from fid_metrics under several "
            "processes, and score the run afterwards with `cxraug score --metrics fidelity,fd_cxr`"
        )
    return load_reference(data, ReferenceConfig(), default_cache_dir(data.root), state.device)


def training_evaluation(train: TrainConfig, data: PreparedData, state: Any) -> PeriodicEvaluation | None:
    """What ``train-gen`` scores every ``fid_every`` steps (None when 0): ``fid_metrics`` on
    ``fid_n`` val images a side. Built on every process, before the first step (a refusal is
    then shared, and the FID network's absence is said at once); it runs on the main one."""
    if not train.fid_every:
        return None
    check_training_metrics(train)
    reference = training_reference(train, data, state)
    if not state.is_main_process:
        return PeriodicEvaluation(train.fid_every, lambda _gen: {})  # the loop runs it on the main process only
    from cxraug.metrics.features import load_feature_extractor

    extractor = load_feature_extractor(None, state.device)

    def evaluate(gen: Any) -> dict[str, Any]:
        return fid_during_training(
            gen, data, split="val", n=train.fid_n, seed=train.seed, extractor=extractor,
            metrics=train.fid_metrics, reference=reference,
        )  # fmt: skip

    return PeriodicEvaluation(train.fid_every, evaluate)
