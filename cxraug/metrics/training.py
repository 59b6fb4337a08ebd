"""FID/KID during training: a small, fixed-size sample, overall only, on the val split (and,
where asked, label fidelity and FD_cxr with the reference classifier, on the same images).
``train-gen`` builds it as the loop's periodic evaluation (:func:`training_evaluation`): which
metrics may run under several processes, and the reference classifier, are decided here."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cxraug.config import TrainConfig
from cxraug.data.prepared import PreparedData
from cxraug.errors import UserError
from cxraug.metrics.cache import default_cache_dir
from cxraug.metrics.registry import MetricOptions, curve_outputs, metrics_in
from cxraug.metrics.scoring import draw_features, fixed_subset
from cxraug.metrics.sources import generator_source
from cxraug.progress import Reporter
from cxraug.train import PeriodicEvaluation

if TYPE_CHECKING:
    from cxraug.generator import Generator
    from cxraug.metrics.features import FeatureExtractor
    from cxraug.metrics.reference import ReferenceClassifier
    from cxraug.metrics.score import ScoreConfig
    from cxraug.metrics.scoring import RealSide


def fid_during_training(
    generator: Generator,
    data: PreparedData,
    split: str = "val",
    n: int = 500,
    seed: int = 0,
    device: str | None = None,
    cache_dir: Path | None = None,
    batch_size: int = 64,
    extractor: FeatureExtractor | None = None,
    weights_path: Path | str | None = None,
    kid_subsets: int = 50,
    reporter: Reporter | None = None,
    metrics: list[str] | None = None,  # registry names; None: fid and kid
    reference: ReferenceClassifier | None = None,  # needed for fidelity / fd_cxr
) -> dict[str, Any]:
    """Overall FID and KID of ``generator`` against up to ``n`` real images of ``split``: the
    pooled row of ``cxraug score`` (the same functions), on a fixed real subset.

    The real side is a fixed subset (seed 0, the same at every step) of the split's images of
    the generator's classes; the synthetic side has as many images, in the same class
    proportions, drawn with ``seed`` (the same noise at every step, so curves are smooth).
    Real features are cached on disk (shared with ``cxraug score``). Pass ``extractor`` (from
    ``load_feature_extractor``) to skip reloading the network at every call. Never test.
    ``fidelity`` and ``fd_cxr`` (with ``reference``) use the same real and synthetic images;
    fidelity's real side is that subset too (no ceiling split: a curve, not a verdict).
    """
    from cxraug.metrics.features import load_feature_extractor
    from cxraug.metrics.score import ScoreConfig, overall_row, real_side

    t0 = time.perf_counter()
    if split == "test":
        raise ValueError("training must not look at the test split; score on val")
    if extractor is None:
        extractor = load_feature_extractor(weights_path, device)
    cfg = ScoreConfig(
        split=split, metrics=list(metrics or ["fid", "kid"]), memorization=False, batch_size=batch_size, seed=seed,
        kid_subsets=kid_subsets, cache_dir=cache_dir,
    )  # fmt: skip
    classes = [c for c in data.classes if c in generator.spec.classes]
    real, picks = _subset(real_side(data, classes, cfg, extractor, reporter), n)
    source = generator_source(generator, seed=seed, batch_size=batch_size)
    fake = {c: draw_features(source, c, len(picks[c]), extractor, batch_size, reporter) for c in classes}
    row = overall_row(real, fake, cfg)
    first = ("split", "size", "n_real", "n_fake", "extractor", "weights_sha256")
    out = {k: row[k] for k in first} | {k: v for k, v in row.items() if k not in (*first, "class", "fake_per_class")}
    if out["status"] == "ok" and metrics_in(cfg.metrics or [], "reference"):
        images = {c: fake[c][0] for c in classes if len(picks[c])}
        out.update(_with_reference(real, picks, images, cfg, reference, row["fake_per_class"]))
    out["curves"] = [o for o in curve_outputs() if o in out]  # what the run page plots (cxraug.runpage)
    out["seconds"] = round(time.perf_counter() - t0, 2)
    return out


def _subset(real: RealSide, n: int) -> tuple[RealSide, dict[str, np.ndarray]]:
    """The real side cut to its fixed subset of at most n images, and the positions kept."""
    picks = fixed_subset({c: len(real.real[c][1]) for c in real.classes}, n)
    if picks is None:
        return real, {c: np.arange(len(real.real[c][1])) for c in real.classes}
    kept = {c: (imgs[picks[c]], feats[picks[c]]) for c, (imgs, feats) in real.real.items()}
    return replace(real, real=kept), picks


def _with_reference(
    real: RealSide,
    picks: dict[str, np.ndarray],
    fake_images: dict[str, np.ndarray],
    cfg: ScoreConfig,
    reference: ReferenceClassifier | None,
    counts: dict[str, int],
) -> dict[str, Any]:
    """Overall fidelity / fd_cxr of the same real subset and synthetic images (``score``'s
    reference-space row, its real side for fidelity the subset)."""
    from cxraug.metrics.fidelity import ReferenceSide, reference_features, reference_row

    if reference is None:
        raise ValueError("fidelity and fd_cxr need the reference classifier (cxraug.metrics.reference.load_reference)")
    real_f, _, fake_f = reference_features(
        real.data, cfg.split, fake_images, reference, real.cache, real.fingerprint, cfg.batch_size
    )
    real_f = {c: f[picks[c]] for c, f in real_f.items()}
    side = ReferenceSide.of(reference, real_f, fake_f, held=real_f)
    names = metrics_in(cfg.metrics or [], "reference")
    take = {c: counts[c] for c in fake_images}
    opts = MetricOptions(kid_subsets=cfg.kid_subsets, seed=cfg.seed)
    row = reference_row(names, real.data.classes, take, side, opts, cfg.min_images)
    return {
        "reference_weights_sha256": reference.weights_sha256,
        **{k: v for k, v in row.items() if not k.endswith("_ci")},
    }


def check_training_metrics(train: TrainConfig) -> None:
    """Fail before any output exists when training-time scoring cannot run."""
    if train.fid_every:
        from cxraug.metrics.inception import locate_inception_weights

        locate_inception_weights()  # a clear "how to get them" line if the FID weights are absent


def training_reference(train: TrainConfig, data: PreparedData, state: Any) -> ReferenceClassifier | None:
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
