"""Score synthetic images against the real images of one split, per class and overall.

Per class c: all real images of c in the split (features cached) against n synthetic images of
c. Overall ("all"): every real image of the scored classes against the synthetic images
subsampled to the real class proportions of the split, so a balanced synthetic set is not
penalised for being balanced. Memorization compares with the train split and calibrates on
the val split (never test). Every row says what it was computed on.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cxraug.classes import resolve_classes
from cxraug.data.prepared import PreparedData, fingerprint
from cxraug.errors import UserError
from cxraug.metrics.cache import CacheKey, FeatureCache, default_cache_dir
from cxraug.metrics.memorization import MemorizationConfig, MemorizationResult
from cxraug.metrics.reference import ReferenceConfig
from cxraug.metrics.registry import DEFAULT_MIN_IMAGES, MetricOptions, compute_metrics, metrics_in, resolve_metrics
from cxraug.metrics.sources import FakeSource
from cxraug.progress import NullReporter, Reporter

SPLITS = ("train", "val", "test")
OVERALL = "all"


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

    def validate(self) -> None:
        if self.split not in SPLITS:
            raise UserError(f"unknown split {self.split!r}; choose val (default) or test")
        if self.split == "train":
            raise UserError("scoring against the train split measures memorization, not quality; use --split val")
        if self.n < 2:
            raise UserError(f"--n must be at least 2 (got {self.n})")
        if self.batch_size < 1:
            raise UserError(f"--batch-size must be positive (got {self.batch_size})")
        if self.min_images < 6:
            raise UserError(f"--min-images must be at least 6 (got {self.min_images})")
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

    def to_json(self) -> dict[str, Any]:
        mem = self.memorization.summary() if self.memorization else None
        return {**self.context, "memorization": mem, "rows": self.rows, **self.extra}


def real_features(
    data: PreparedData,
    split: str,
    class_name: str,
    extractor: Any,
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


def _metric_row(
    names: list[str], real: np.ndarray, fake: np.ndarray, cfg: ScoreConfig, base: dict[str, Any]
) -> dict[str, Any]:
    row = {**base, "n_real": len(real), "n_fake": len(fake)}
    few = min(len(real), len(fake))
    if few < cfg.min_images:
        row["status"] = f"too few images (n_real={len(real)}, n_fake={len(fake)} < {cfg.min_images})"
        return row
    opts = MetricOptions(kid_subsets=cfg.kid_subsets, seed=cfg.seed)
    row.update(compute_metrics(metrics_in(names, "inception"), real, fake, opts))
    row["status"] = "ok"
    return row


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


def score(
    data: PreparedData,
    source: FakeSource,
    cfg: ScoreConfig,
    extractor: Any,
    reporter: Reporter | None = None,
    reference: Any = None,  # a ReferenceClassifier; None: loaded or trained when fidelity/fd_cxr are asked
) -> ScoreResult:
    """Per-class and overall metrics of ``source`` against ``data``'s ``cfg.split``."""
    t0 = time.perf_counter()
    cfg.validate()
    reporter = reporter or NullReporter()
    if source.size != data.size:
        raise UserError(
            f"synthetic images are {source.size}px, the dataset {data.root} is {data.size}px; "
            "score against a dataset prepared at the generator's size"
        )
    classes = choose_classes(cfg, data, source)
    fp = fingerprint(data)
    cache_dir = (cfg.cache_dir or default_cache_dir(data.root)) if cfg.use_cache else None
    cache = FeatureCache(cache_dir)
    described = extractor.describe()
    base = {
        "split": cfg.split,
        "size": data.size,
        "extractor": extractor.name,
        "weights_sha256": described.get("weights_sha256"),
    }

    real: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    fake: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    rows = []
    for c in classes:
        real[c] = real_features(data, cfg.split, c, extractor, cache, cfg.batch_size, reporter, fp)
        imgs = source.draw(c, cfg.n, reporter)
        if len(imgs):
            feats = extractor.extract(imgs, cfg.batch_size, reporter, what=f"synthetic {c} ({len(imgs)})")
        else:
            feats = np.empty((0, extractor.num_features), np.float32)
        fake[c] = (imgs, feats)
        rows.append(_metric_row(cfg.metrics, real[c][1], feats, cfg, {"class": c, **base}))

    counts = proportional_counts({c: len(real[c][0]) for c in classes}, {c: len(fake[c][0]) for c in classes})
    real_all = np.concatenate([real[c][1] for c in classes])
    fake_all = np.concatenate([fake[c][1][: counts[c]] for c in classes])
    overall = _metric_row(cfg.metrics, real_all, fake_all, cfg, {"class": OVERALL, **base})
    overall["fake_per_class"] = counts
    rows.append(overall)

    result = ScoreResult(context={}, rows=rows)
    if metrics_in(cfg.metrics, "reference"):  # fidelity, fd_cxr: the dataset's own classifier
        from cxraug.metrics.fidelity import add_reference_metrics

        images = {c: fake[c][0] for c in classes}
        reference = add_reference_metrics(data, classes, images, result, cfg, extractor, reference, cache, fp, reporter)
    if cfg.memorization:
        res, result.per_image, result.pairs_png = _memorization(
            data, classes, real, fake, cfg, extractor, cache, fp, reporter
        )
        result.memorization = res
        for row in rows:
            stats = res.overall if row["class"] == OVERALL else res.per_class.get(row["class"])
            if stats:
                row["mem_share_pixels"] = stats["share_below_pixels"]
                row["mem_share_features"] = stats["share_below_features"]
                row["mem_near_copies"] = stats["near_copies"]

    result.context = {
        "kind": "score",
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "split": cfg.split,
        "size": data.size,
        "n_per_class": cfg.n,
        "seed": cfg.seed,
        "classes": classes,
        "metrics": cfg.metrics,
        "min_images": cfg.min_images,
        "kid_subsets": cfg.kid_subsets,
        "source": source.info,
        "data": {
            "path": str(Path(data.root).resolve()),
            "name": data.name,
            "fingerprint": fp,
            "real_data": data.meta.get("real_data", True),
        },
        **described,
        "preprocessing": "uint8, grey as 3 equal channels, TF1 bilinear resize to 299 (torch-fidelity), (x-128)/128",
        "overall_class_mix": "synthetic subsampled to the real class proportions of the split",
        "cache": {
            "dir": str(cache_dir) if cache_dir else None,
            "hits": cache.hits,
            "misses": cache.misses,
            **({"damaged_rebuilt": cache.damaged} if cache.damaged else {}),  # said only when it happened
        },
        "seconds": round(time.perf_counter() - t0, 2),
    }
    if metrics_in(cfg.metrics, "reference"):
        result.context["reference"] = reference.describe()  # next to every number that used it
    if cfg.split == "test":
        result.context["warning"] = "scored on the TEST split: do not use these numbers to choose models"
    return result


Pair = tuple[np.ndarray, np.ndarray]  # uint8 images, features


def _memorization(
    data: PreparedData,
    classes: list[str],
    real: dict[str, Pair],
    fake: dict[str, Pair],
    cfg: ScoreConfig,
    extractor: Any,
    cache: FeatureCache,
    fp: str,
    reporter: Reporter,
) -> tuple[MemorizationResult, list[dict[str, Any]], bytes | None]:
    """Nearest training image of every synthetic image; thresholds from val -> train."""
    from cxraug.metrics import memorization as mem

    found, nearest_imgs, syn_imgs = [], {}, {}
    for c in classes:
        t_img, t_feat = real_features(data, "train", c, extractor, cache, cfg.batch_size, reporter, fp)
        if len(t_img) == 0 or len(fake[c][0]) == 0:
            continue
        val = (
            real[c]
            if cfg.split == "val"
            else real_features(data, "val", c, extractor, cache, cfg.batch_size, reporter, fp)
        )
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
    df = data.manifest()
    df = df[df["split"] == "train"]
    if "index" in df.columns and "image_id" in df.columns:
        df = df.sort_values("index")
        return [str(x) for x in df["image_id"]]
    return [f"train[{i}]" for i in range(len(data.labels("train")))]
