"""Score synthetic images against the real images of one split, per class and overall.

Per class c: all real images of c in the split (features cached) against n synthetic images of
c. Overall ("all"): every real image of the scored classes against the synthetic images
subsampled to the real class proportions of the split, so a balanced synthetic set is not
penalised for being balanced. Memorization compares with the train split and calibrates on
the val split (never test). Every row says what it was computed on.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cxraug.classes import resolve_classes
from cxraug.data.prepared import PreparedData, fingerprint
from cxraug.errors import UserError
from cxraug.fsutil import short
from cxraug.metric_names import TRAIN_SPLIT
from cxraug.metrics.cache import FeatureCache, default_cache_dir
from cxraug.metrics.memorization import MemorizationConfig, MemorizationResult
from cxraug.metrics.real import real_features
from cxraug.metrics.reference import ReferenceConfig
from cxraug.metrics.registry import DEFAULT_MIN_IMAGES, MetricOptions, metrics_in, resolve_metrics
from cxraug.metrics.scoring import OVERALL, Pair, RealSide, draw_features, metric_row, pooled, proportional_counts
from cxraug.metrics.sources import FakeSource
from cxraug.progress import NullReporter, Reporter
from cxraug.resources import require_memory

if TYPE_CHECKING:
    from cxraug.metrics.features import FeatureExtractor
    from cxraug.metrics.reference import ReferenceClassifier

__all__ = ["OVERALL", "Pair", "RealSide", "draw_features", "proportional_counts"]  # from cxraug.metrics.scoring

SPLITS = ("train", "val", "test")


@dataclass
class ScoreConfig:
    split: str = "val"
    n: int = 1000  # synthetic images per class
    classes: list[str] | None = None  # None: every class both sides have
    metrics: list[str] | None = None  # None: the default set (no reference classifier)
    memorization: bool = True
    batch_size: int = 64
    seed: int = 0  # generator noise and KID subsets
    min_images: int = DEFAULT_MIN_IMAGES
    kid_subsets: int = 100
    cache_dir: Path | None = None  # None: DATA/feature_cache
    use_cache: bool = True
    memorization_config: MemorizationConfig = field(default_factory=MemorizationConfig)
    reference: ReferenceConfig = field(default_factory=ReferenceConfig)  # for fidelity and fd_cxr

    def __post_init__(self) -> None:  # a str path, or one class / metric name, from Python
        self.cache_dir = None if self.cache_dir is None else Path(self.cache_dir)
        if isinstance(self.classes, str):
            self.classes = [c.strip() for c in self.classes.split(",") if c.strip()]
        if isinstance(self.metrics, str):
            self.metrics = [m.strip() for m in self.metrics.split(",") if m.strip()]

    def validate(self) -> None:
        from cxraug.config import check_option

        check_option("--seed", self.seed)
        if self.split not in SPLITS:
            raise UserError(f"unknown split {short(self.split, 60)!r}; choose val (default), test or train")
        if self.n < 2:
            raise UserError(f"--n must be at least 2 (got {self.n})")
        if self.batch_size < 1:
            raise UserError(f"--batch-size must be positive (got {self.batch_size})")
        if self.min_images < 6:
            raise UserError(f"--min-images must be at least 6 (got {self.min_images})")
        if self.kid_subsets < 1:
            raise UserError(f"--kid-subsets must be at least 1 (got {self.kid_subsets})")
        self.metrics = resolve_metrics(self.metrics)
        if metrics_in(self.metrics, "reference"):
            self.reference.validate()


@dataclass
class ScoreResult:
    context: dict[str, Any]  # what everything was computed on
    rows: list[dict[str, Any]]  # one per class, then "all"
    memorization: MemorizationResult | None = None
    pairs_png: bytes | None = None
    per_image: list[dict[str, Any]] = field(default_factory=list)  # nearest train image of each synthetic one
    extra: dict[str, Any] = field(default_factory=dict)  # further JSON sections (fidelity confusion tables)
    files: dict[str, bytes] = field(default_factory=dict)  # further output files by name (confusion.png)
    # the reference classifier's features: "real"/"fake" -> class -> features, "hits" -> class ->
    # whether each synthetic image was called its class (fidelity/fd_cxr only; not in the JSON)
    reference_features: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        mem = self.memorization.summary() if self.memorization else None
        return {**self.context, "memorization": mem, "rows": self.rows, **self.extra}


def choose_classes(cfg: ScoreConfig, data: PreparedData, source: FakeSource) -> list[str]:
    both = [c for c in data.classes if c in source.classes]
    if not both:
        raise UserError(
            f"the synthetic images' classes ({', '.join(source.classes)}) are not in the dataset {data.root}"
        )
    if cfg.classes is None:
        return both
    try:
        chosen = resolve_classes(cfg.classes, data.classes)
    except ValueError as e:
        raise UserError(str(e)) from None
    missing = [c for c in chosen if c not in source.classes]
    if missing:
        raise UserError(f"no synthetic images of {', '.join(missing)}; available: {', '.join(source.classes)}")
    return chosen


def check_size(data: PreparedData, source: FakeSource) -> None:
    if source.size != data.size:
        raise UserError(
            f"synthetic images are {source.size}px, the dataset {data.root} is {data.size}px; "
            "score against a dataset prepared at the generator's size"
        )


def real_side(
    data: PreparedData,
    classes: list[str],
    cfg: ScoreConfig,
    extractor: FeatureExtractor,
    reporter: Reporter | None = None,
) -> RealSide:
    """Real features of ``classes`` in ``cfg.split`` (from the cache when valid)."""
    fp = fingerprint(data)
    cache_dir = (cfg.cache_dir or default_cache_dir(data.root)) if cfg.use_cache else None
    cache = FeatureCache(cache_dir)
    real = {c: real_features(data, cfg.split, c, extractor, cache, cfg.batch_size, reporter, fp) for c in classes}
    return RealSide(data, cfg.split, list(classes), extractor, cache, cache_dir, fp, cfg.batch_size, real)


def fake_bytes(source: FakeSource, classes: list[str], n: int, num_features: int) -> int:
    """Memory the synthetic side of one source holds while it is scored: every class's images
    and features, and the features again for the pooled row."""
    per_image = source.size * source.size + 2 * 4 * num_features
    return sum(source.drawn(c, n) for c in classes) * per_image


def check_fake_memory(
    sources: list[FakeSource], classes: list[str], n: int, num_features: int, many: str | None = None
) -> None:
    """Refuse, before any image is drawn, a -n whose synthetic images cannot fit in memory
    (``many``: what the sources are, said after the classes; default "x N runs")."""
    need = sum(fake_bytes(s, classes, n, num_features) for s in sources)
    many = many if many is not None else (f" x {len(sources)} runs" if len(sources) > 1 else "")
    require_memory(f"scoring {n:,} synthetic images per class x {len(classes)} classes{many}", need)


def score(
    data: PreparedData,
    source: FakeSource,
    cfg: ScoreConfig,
    extractor: FeatureExtractor,
    reporter: Reporter | None = None,
    reference: ReferenceClassifier | None = None,  # None: loaded or trained when fidelity/fd_cxr are asked
    before_work: Callable[[list[str]], None] | None = None,
) -> ScoreResult:
    """Per-class and overall metrics of ``source`` against ``data``'s ``cfg.split``.
    ``before_work(classes)``: called once every check has passed, before any image is drawn or
    featured (the command prints its plan there; it may raise to stop)."""
    t0 = time.perf_counter()
    cfg.validate()
    reporter = reporter or NullReporter()
    check_size(data, source)
    classes = choose_classes(cfg, data, source)
    check_fake_memory([source], classes, cfg.n, extractor.num_features)
    if before_work is not None:
        before_work(classes)
    real = real_side(data, classes, cfg, extractor, reporter)
    return score_source(real, source, cfg, reporter, t0=t0, reference=reference)


def score_source(
    real: RealSide,
    source: FakeSource,
    cfg: ScoreConfig,
    reporter: Reporter | None = None,
    fake: dict[str, Pair] | None = None,
    t0: float | None = None,
    reference: ReferenceClassifier | None = None,  # None: loaded or trained when fidelity/fd_cxr are asked
) -> ScoreResult:
    """The per-source side: metrics of ``source`` (or of its already drawn ``fake`` images and
    features) against the real side. ``cfg`` must be the one ``real`` was built with."""
    t0 = time.perf_counter() if t0 is None else t0
    reporter = reporter or NullReporter()
    if fake is None:
        fake = {c: draw_features(source, c, cfg.n, real.extractor, cfg.batch_size, reporter) for c in real.classes}
    rows = [*class_rows(real, fake, cfg), overall_row(real, fake, cfg)]
    result = ScoreResult(context={}, rows=rows)
    if metrics_in(cfg.metrics, "reference"):  # fidelity, fd_cxr: the dataset's own classifier
        reference = _add_reference_metrics(
            real, {c: fake[c][0] for c in real.classes}, result, cfg, reference, reporter
        )
    if cfg.memorization:
        _add_memorization(result, real, fake, cfg, reporter)
    result.context = _context(real, source, cfg, t0)
    if reference is not None and metrics_in(cfg.metrics, "reference"):
        result.context["reference"] = reference.describe()  # next to every number that used it
    if cfg.split == "test":
        result.context["warning"] = "scored on the TEST split: do not use these numbers to choose models"
    elif cfg.split == "train":
        result.context["warning"] = f"scored {TRAIN_SPLIT}: a generator that copies them scores best"
    return result


def _add_reference_metrics(
    real: RealSide,
    fake_images: dict[str, np.ndarray],
    result: ScoreResult,
    cfg: ScoreConfig,
    reference: ReferenceClassifier | None,
    reporter: Reporter,
) -> ReferenceClassifier:
    """The reference (loaded, or trained on first use, on the extractor's device), then its
    metrics into ``result``'s rows, JSON sections and files."""
    from cxraug.metrics.fidelity import reference_metrics
    from cxraug.metrics.reference import load_reference

    if reference is None:
        device = getattr(real.extractor, "device", None)
        reference = load_reference(real.data, cfg.reference, real.cache.directory, device, reporter)
    names = metrics_in(cfg.metrics or [], "reference")
    result.extra, result.files, result.reference_features = reference_metrics(
        real, fake_images, result.rows, names, _options(cfg), cfg.min_images, reference, reporter
    )
    return reference


def _options(cfg: ScoreConfig) -> MetricOptions:
    return MetricOptions(kid_subsets=cfg.kid_subsets, seed=cfg.seed)


def class_rows(real: RealSide, fake: dict[str, Pair], cfg: ScoreConfig) -> list[dict[str, Any]]:
    """One row per class: all its real images of the split against its synthetic ones."""
    base, opts = real.base(), _options(cfg)
    return [
        metric_row(cfg.metrics or [], real.real[c][1], fake[c][1], opts, cfg.min_images, {"class": c, **base})
        for c in real.classes
    ]


def overall_row(real: RealSide, fake: dict[str, Pair], cfg: ScoreConfig) -> dict[str, Any]:
    """The pooled ("all") row: every real image against the synthetic ones subsampled to the real
    class proportions (``fake_per_class``)."""
    counts = overall_counts(real, fake)
    real_all = pooled({c: real.real[c][1] for c in real.classes})
    fake_all = pooled({c: fake[c][1] for c in real.classes}, counts)
    row = metric_row(
        cfg.metrics or [], real_all, fake_all, _options(cfg), cfg.min_images, {"class": OVERALL, **real.base()}
    )
    row["fake_per_class"] = counts
    return row


def _add_memorization(
    result: ScoreResult, real: RealSide, fake: dict[str, Pair], cfg: ScoreConfig, reporter: Reporter
) -> None:
    res, result.per_image, result.pairs_png = _memorization(real, fake, cfg, reporter)
    result.memorization = res
    for row in result.rows:
        stats = res.overall if row["class"] == OVERALL else res.per_class.get(row["class"])
        if stats:
            row["mem_share_pixels"] = stats["share_below_pixels"]
            row["mem_share_features"] = stats["share_below_features"]
            row["mem_near_copies"] = stats["near_copies"]


def _context(real: RealSide, source: FakeSource, cfg: ScoreConfig, t0: float) -> dict[str, Any]:
    """What every number of a score was computed on."""
    data, cache = real.data, real.cache
    return {
        "kind": "score",
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "split": cfg.split,
        "size": data.size,
        "n_per_class": cfg.n,
        "seed": cfg.seed,
        "classes": real.classes,
        "metrics": cfg.metrics,
        "min_images": cfg.min_images,
        "kid_subsets": cfg.kid_subsets,
        "source": source.info,
        "data": {
            "path": str(Path(data.root).resolve()),
            "name": data.name,
            "fingerprint": real.fingerprint,
            "real_data": data.meta.get("real_data", True),
        },
        **real.extractor.describe(),
        "preprocessing": "uint8, grey as 3 equal channels, TF1 bilinear resize to 299 (torch-fidelity), (x-128)/128",
        "overall_class_mix": "synthetic subsampled to the real class proportions of the split",
        "cache": {
            "dir": str(real.cache_dir) if real.cache_dir else None,
            "hits": cache.hits,
            "misses": cache.misses,
            **({"damaged_rebuilt": cache.damaged} if cache.damaged else {}),  # said only when it happened
            **({"not_stored": cache.unsaved} if cache.unsaved else {}),
        },
        "seconds": round(time.perf_counter() - t0, 2),
    }


def overall_counts(real: RealSide, fake: dict[str, Pair]) -> dict[str, int]:
    """Synthetic images per class in the "all" row: the real class proportions of the split."""
    return proportional_counts(
        {c: len(real.real[c][0]) for c in real.classes}, {c: len(fake[c][0]) for c in real.classes}
    )


def _memorization(
    real: RealSide, fake: dict[str, Pair], cfg: ScoreConfig, reporter: Reporter
) -> tuple[MemorizationResult, list[dict[str, Any]], bytes | None]:
    """Nearest training image of every synthetic image; thresholds from val -> train."""
    from cxraug.metrics import memorization as mem

    data = real.data
    found, nearest_imgs, syn_imgs = [], {}, {}
    for c in real.classes:
        t_img, t_feat = real.features_of("train", c, reporter)
        if len(t_img) == 0 or len(fake[c][0]) == 0:
            continue
        val = real.features_of("val", c, reporter)
        nb = mem.neighbours(c, fake[c][0], fake[c][1], t_img, t_feat, val[0], val[1])
        found.append(nb)
        # Keep only each synthetic image's nearest training image (for the PNG), not the class.
        nearest_imgs[c], syn_imgs[c] = t_img[nb.syn_px_idx], fake[c][0]
    res = mem.assess(found, cfg.memorization_config)
    if not found:
        res.note = "no training images in the scored classes"
    image_ids = _image_ids(data)
    labels = data.labels("train")
    per_image = []
    for nb in found:
        where = np.flatnonzero(labels == data.classes.index(nb.class_name))
        for i in range(len(nb.syn_px)):
            per_image.append(
                {
                    "class": nb.class_name,
                    "synthetic_index": i,
                    "nn_pixels_train_image": image_ids[int(where[nb.syn_px_idx[i]])],
                    "nn_pixels_rms": round(float(nb.syn_px[i]), 6),
                    "nn_features_train_image": image_ids[int(where[nb.syn_feat_idx[i]])],
                    "nn_features_l2": round(float(nb.syn_feat[i]), 4),
                }
            )
    title = f"{data.name}: synthetic vs train, split {cfg.split}"
    png = mem.closest_pairs_png(found, syn_imgs, nearest_imgs, res, title) if found else None
    return res, per_image, png


def _image_ids(data: PreparedData) -> list[str]:
    """Train-split image ids in stored order (the manifest's ``index`` column)."""
    return [str(x) for x in data.split_rows("train")["image_id"]]
