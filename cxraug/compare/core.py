"""Compare generator runs fairly: one real side, the same n, seed and extractor for all.

The real features are computed once (``score.real_side``, the score cache); each run is then
the per-source side of ``score`` (``score.score_source``). Runs trained on different prepared
datasets are refused unless the user names the dataset and allows it.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cxraug.compare.bootstrap import BootstrapConfig
from cxraug.compare.cost import SamplingCost, export_parameters, measure_sampling, training_cost
from cxraug.compare.replicated import ArmSpec, arm_labels
from cxraug.compare.rows import FLOOR, rows_and_differences
from cxraug.data.prepared import PreparedData
from cxraug.errors import UserError
from cxraug.metrics import registry
from cxraug.metrics.score import (
    Pair,
    RealSide,
    ScoreConfig,
    ScoreResult,
    check_fake_memory,
    check_size,
    choose_classes,
    draw_features,
    real_side,
    score_source,
)
from cxraug.metrics.sources import FakeSource, train_images_source
from cxraug.progress import NullReporter, Reporter
from cxraug.replicates import check_replicates

if TYPE_CHECKING:
    from cxraug.generator import Generator
    from cxraug.metrics.features import FeatureExtractor


@dataclass
class CompareConfig:
    runs: list[Path]
    score: ScoreConfig = field(default_factory=ScoreConfig)  # split, n, classes, metrics, seed, ...
    bootstrap: BootstrapConfig = field(default_factory=BootstrapConfig)
    data: Path | None = None  # None: the dataset the runs were trained on
    allow_different_data: bool = False
    speed_images: int = 128  # images timed for sampling throughput, after a warm-up batch
    grid_columns: int = 8  # samples per run in each class's side-by-side image
    benchmark: Path | None = None  # a `cxraug benchmark` folder: downstream deltas
    # Sampling options (--set key=value): each run takes the keys its plugin has, so runs of one
    # plugin always sample alike; a key that no run's plugin has is refused.
    sample_values: dict[str, Any] = field(default_factory=dict)
    # Methods of replicated runs (NAME=RUN1,RUN2,...): ``runs`` is then every replicate in order.
    # Empty: every run is its own arm.
    arms: list[ArmSpec] = field(default_factory=list)

    def arm_specs(self) -> list[ArmSpec]:
        return self.arms or [ArmSpec(None, (Path(r),)) for r in self.runs]

    def validate(self) -> None:
        if self.arms:
            self.runs = [r for a in self.arms for r in a.runs]
        if len(self.arm_specs()) < 2:
            raise UserError("compare needs at least two runs or arms (RUN_A RUN_B [RUN ...], or NAME=RUN1,RUN2 ...)")
        if self.score.split == "train":  # its real-vs-real floor draws training images: it would be 0
            raise UserError(
                "compare --split train: its real-vs-real floor is drawn from the training images; compare on val "
                "or test (`cxraug score --split train` scores one run against the training images)"
            )
        self.score.validate()
        if self.bootstrap.resamples < 0 or self.bootstrap.resamples == 1:
            raise UserError(f"--bootstrap must be 0 (no intervals) or at least 2 (got {self.bootstrap.resamples})")
        if not 0 < self.bootstrap.confidence < 1:
            raise UserError(f"--confidence must be between 0 and 1 (got {self.bootstrap.confidence})")
        if self.speed_images < 1:
            raise UserError(f"--speed-images must be positive (got {self.speed_images})")


@dataclass
class RunEntry:
    """One compared run: its name in every table, the loaded generator and what it says of itself."""

    label: str
    path: Path
    generator: Generator
    meta: dict[str, Any]  # the export's config.json
    options: Any = None  # the plugin's SampleOptions used for every sample of this run

    @property
    def data(self) -> dict[str, Any]:
        return self.meta.get("data") or {}


@dataclass
class CompareResult:
    context: dict[str, Any]
    runs: list[dict[str, Any]]  # per run: label, path, plugin, step, cost
    rows: list[dict[str, Any]]  # per run and class (then "all"): the score row + intervals
    differences: list[dict[str, Any]]  # per pair of runs, class and metric
    downstream: list[dict[str, Any]] = field(default_factory=list)  # benchmark deltas
    scores: dict[str, ScoreResult] = field(default_factory=dict)  # label -> the score result
    samples: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)  # class -> label -> first images
    floor: list[dict[str, Any]] = field(default_factory=list)  # per class: the real-vs-real floor's row
    replicates: list[dict[str, Any]] = field(default_factory=list)  # per replicate of an arm of several runs

    def to_json(self) -> dict[str, Any]:
        return {
            **self.context,
            "runs": self.runs,
            "rows": self.rows,
            "differences": self.differences,
            "floor_rows": self.floor,
            "replicate_rows": self.replicates,
            "downstream": self.downstream,
        }


def _labels(paths: list[Path]) -> list[str]:
    """The run folder names; a run given twice is told apart by #2, #3."""
    out: list[str] = []
    for p in paths:
        name = Path(p).resolve().name
        label, k = name, 1
        while label in out:
            k += 1
            label = f"{name}#{k}"
        out.append(label)
    return out


def load_runs(paths: list[Path], device: Any, sample_values: dict[str, Any] | None = None) -> list[RunEntry]:
    from cxraug.metrics.features import resolve_device
    from cxraug.runs import load_generator

    values = sample_values or {}
    entries, used = [], set()
    for label, p in zip(_labels(paths), paths, strict=True):
        gen, meta = load_generator(p)
        gen.to(resolve_device(device))
        mine = {k: v for k, v in values.items() if k in gen.SampleOptions.model_fields}
        used |= set(mine)
        entries.append(RunEntry(label, Path(p), gen, meta, gen.parse_sample_options(mine)))
    unknown = sorted(set(values) - used)
    if unknown:
        plugins = sorted({e.meta.get("plugin") or "?" for e in entries})
        raise UserError(
            f"no compared run's plugin ({', '.join(plugins)}) has the sampling option(s) {', '.join(unknown)}; "
            "see `cxraug plugins` for each plugin's options"
        )
    return entries


def choose_data(entries: list[RunEntry], data: Path | None, allow_different: bool) -> PreparedData:
    """The prepared dataset to compare on; refuses runs trained on other data unless allowed."""
    from cxraug.data.prepared import check_trained_on, open_prepared

    prints = {e.label: e.data.get("fingerprint") for e in entries}
    how = "; ".join(f"{e.label}: {e.data.get('name', '?')} {str(prints[e.label])[:12]}" for e in entries)
    if len(set(prints.values())) > 1 and not (data is not None and allow_different):
        raise UserError(
            f"the runs were trained on different prepared datasets ({how}); their numbers are not comparable. "
            "To compare them on one anyway: --data DATA --allow-different-data"
        )
    if data is None:
        path = entries[0].data.get("path")
        if not path:
            raise UserError(f"{entries[0].path}: its training data is not recorded; pass --data DATA")
    chosen = open_prepared(data if data is not None else path)
    if not allow_different:
        anyway = "pass --data DATA --allow-different-data to compare on it anyway"
        check_trained_on(chosen, {e.label: e.data for e in entries}, anyway)
    return chosen


def _classes(cfg: ScoreConfig, data: PreparedData, entries: list[RunEntry]) -> list[str]:
    from cxraug.metrics.sources import generator_source

    chosen = None
    for e in entries:
        src = generator_source(e.generator)
        check_size(data, src)
        got = choose_classes(cfg, data, src)
        chosen = got if chosen is None else [c for c in chosen if c in got]
    if not chosen:
        raise UserError("the runs have no class in common with the dataset")
    return chosen


def features_sha256(feats: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(feats).tobytes()).hexdigest()


def compare(
    cfg: CompareConfig,
    extractor: FeatureExtractor,
    device: Any = "auto",
    reporter: Reporter | None = None,
    before_work: Callable[[PreparedData, list[str], dict[str, FakeSource]], None] | None = None,
) -> CompareResult:
    """``before_work(data, classes, sources)``: called once the runs are loaded and checked, before
    any image is drawn (the command prints its plan there; it may raise to stop)."""
    t0 = time.perf_counter()
    cfg.validate()
    reporter = reporter or NullReporter()
    sc = cfg.score
    for spec in cfg.arm_specs():  # replicates of one method differ in their seed only: before loading
        check_replicates(spec.name or Path(spec.runs[0]).name, list(spec.runs))
    entries = load_runs(cfg.runs, device, cfg.sample_values)
    arms = arm_labels(cfg.arm_specs(), [e.label for e in entries])
    data = choose_data(entries, cfg.data, cfg.allow_different_data)
    classes = _classes(sc, data, entries)
    sources = {e.label: _source(e, sc) for e in entries}
    floor_source = train_images_source(data, seed=sc.seed)  # the real-vs-real floor (rows.py)
    many = f" x {len(sources)} runs and the real-vs-real floor"
    check_fake_memory([*sources.values(), floor_source], classes, sc.n, extractor.num_features, many)
    if before_work is not None:
        before_work(data, classes, {**sources, "real-vs-real floor (training images)": floor_source})

    run_info = []
    for e in entries:  # cost first: sampling is timed before any feature work fills the allocator
        sampling = measure_sampling(e.generator, cfg.speed_images, sc.batch_size, sc.seed, e.options)
        run_info.append(_run_record(e, sampling))
    for r in run_info:
        r["arm"] = next(a for a, reps in arms.items() if r["label"] in reps)

    real = real_side(data, classes, sc, extractor, reporter)
    scores: dict[str, ScoreResult] = {}
    fakes: dict[str, dict[str, Pair]] = {}
    with reporter.task("runs x classes", total=len(entries) * len(classes)) as advance:
        for e in entries:
            source = sources[e.label]
            fakes[e.label] = {}
            for c in classes:
                fakes[e.label][c] = draw_features(source, c, sc.n, extractor, sc.batch_size, reporter)
                advance(1)
            scores[e.label] = score_source(real, source, sc, reporter, fake=fakes[e.label])
    fakes[FLOOR] = {c: draw_features(floor_source, c, sc.n, extractor, sc.batch_size, reporter) for c in classes}
    floor = score_source(real, floor_source, replace(sc, memorization=False), reporter, fake=fakes[FLOOR])

    made = rows_and_differences(real, fakes, scores, floor, sc.metrics or [], cfg.bootstrap, arms)
    samples = {c: {lab: fakes[lab][c][0][: cfg.grid_columns] for lab in scores} for c in classes}
    downstream: list[dict[str, Any]] = []
    notes: list[str] = []
    if cfg.benchmark is not None:
        from cxraug.compare.downstream import benchmark_deltas

        downstream, notes = benchmark_deltas(cfg.benchmark, entries)
    context = _context(cfg, scores[entries[0].label].context, real, arms, notes, extractor, t0)
    if sc.split == "test":
        context["warning"] = "compared on the TEST split: do not use these numbers to choose models"
    return CompareResult(
        context, run_info, made.rows, made.differences, downstream, scores, samples, made.floor, made.replicates
    )


def _context(
    cfg: CompareConfig,
    first: dict[str, Any],
    real: RealSide,
    arms: dict[str, list[str]],
    notes: list[str],
    extractor: FeatureExtractor,
    t0: float,
) -> dict[str, Any]:
    """What every number of a comparison was computed on (``first``: the first run's score context)."""
    sc, classes = cfg.score, real.classes
    return {
        "kind": "compare",
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        **{k: first[k] for k in ("split", "size", "n_per_class", "seed", "classes", "metrics", "min_images")},
        "kid_subsets": sc.kid_subsets,
        "data": first["data"],
        **extractor.describe(),
        "preprocessing": first["preprocessing"],
        "overall_class_mix": first["overall_class_mix"],
        "real_features_sha256": {c: features_sha256(real.real[c][1]) for c in classes},
        "n_real": {c: len(real.real[c][0]) for c in classes},
        "cache": first["cache"],
        "bootstrap": {
            "resamples": cfg.bootstrap.resamples,
            "confidence": cfg.bootstrap.confidence,
            "seed": cfg.bootstrap.seed,
            "method": "bootstrap spread re-centred on the estimate (estimate + quantiles of draw - mean draw: "
            "resampling with replacement shifts FID-like metrics upward); real patients (all their images) and "
            "synthetic feature vectors resampled with replacement, the same real draw and the same synthetic "
            "positions for every run (paired differences); KID is the unbiased MMD^2 of all images, value and "
            "interval alike",
            "adjustment": "Holm over every 'better' comparison (classes and all x metrics x run pairs); p normal "
            "from the bootstrap sd of the difference (no floor)",
        },
        "floor": FLOOR_METHOD,
        "lead_metric": registry.lead_output(sc.metrics),
        "arms": arms,
        "replicates_method": REPLICATES_METHOD,
        "allow_different_data": cfg.allow_different_data,
        "notes": notes,
        "seconds": round(time.perf_counter() - t0, 2),
    }


def _source(e: RunEntry, sc: ScoreConfig) -> FakeSource:
    from cxraug.metrics.sources import generator_source

    info = {"run": str(e.path.resolve()), "step": e.meta.get("step"), "plugin": e.meta.get("plugin")}
    return generator_source(e.generator, seed=sc.seed, batch_size=sc.batch_size, options=e.options, info=info)


def _run_record(e: RunEntry, sampling: SamplingCost) -> dict[str, Any]:
    step = e.meta.get("step")
    return {
        "label": e.label,
        "path": str(e.path.resolve()),
        "plugin": e.meta.get("plugin"),
        "step": step,
        "data": {k: e.data.get(k) for k in ("path", "name", "fingerprint")},
        "sampling_options": e.options.model_dump(mode="json") if e.options is not None else {},
        "training": training_cost(e.path, step),
        "export_parameters": export_parameters(e.path),
        "sampling": sampling.__dict__,
    }


FLOOR_METHOD = (
    "real-vs-real floor: up to n real TRAINING images per class (a seeded choice) scored against the split's "
    "images as a run is (same real side, n, metric code and resamples); value - floor is what a run adds above "
    "what a perfect generator would score from finite samples; a class with fewer than n training images has a "
    "floor of fewer images, and then FID and FD_cxr (which fall as n grows) get no value - floor, the KIDs "
    "(unbiased) do. The reference classifier was trained on those "
    "training images, so its FD_cxr/KID_cxr floor is optimistic (low)"
)

REPLICATES_METHOD = (
    "an arm of several runs (NAME=RUN1,RUN2,...: one method trained with other seeds) is the mean over its "
    "replicates; each resample draws the replicates with replacement, then real patients, then synthetic "
    "positions, so its intervals include training randomness. An arm of one run covers that one trained "
    "generator only"
)
