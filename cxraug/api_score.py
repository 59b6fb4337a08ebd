"""``cxraug score`` from Python: FID / KID and more per class of a run's generator or a
synthetic set, its plan said before any image is drawn, and a warning when the default n is slow."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cxraug.api_support import (
    PathLike,
    PlanOnly,
    Say,
    Warn,
    as_path,
    default_warn,
    say_lines,
    scoped,
    set_items,
    with_options,
)
from cxraug.errors import UserError
from cxraug.lock import output_lock
from cxraug.progress import Reporter
from cxraug.runtime import configure

if TYPE_CHECKING:
    import pandas as pd

    from cxraug.data.prepared import PreparedData
    from cxraug.metrics.features import FeatureExtractor
    from cxraug.metrics.score import ScoreConfig, ScoreResult
    from cxraug.metrics.sources import FakeSource
    from cxraug.metrics.workplan import ExtractionPlan

SLOW_SCORE_SECONDS = 180  # a score expected to take longer than this is said before it starts


@dataclass
class Scores:
    """A score folder: where it is, the per-class table (scores.csv as a DataFrame), the result,
    and the plan said before the work (under ``plan_only``, the plan alone: the rest is None)."""

    out: Path | None
    table: pd.DataFrame | None
    result: ScoreResult | None
    plan: ExtractionPlan | None = None


FASTEST_IMG_PER_S_PER_THREAD = 50.0  # Inception on a fast CPU core, generously: below this bound, no need to time it


def measure_img_per_s(extractor: FeatureExtractor, size: int, n: int = 8) -> float:
    """The extractor's speed here and now: one warm-up image, then ``n`` timed (a few seconds
    on a busy CPU), so the estimate reflects this machine's load and threads."""
    import numpy as np

    blank = np.zeros((n, size, size), np.uint8)
    extractor.extract(blank[:1], batch_size=1)
    t0 = time.perf_counter()
    extractor.extract(blank, batch_size=n)
    return n / max(time.perf_counter() - t0, 1e-9)


def slow_score_warning(n: int, classes: int, n_real: int, img_per_s: float) -> str | None:
    """A line when reading the default ``n`` per class (and the real side) takes more than a few minutes."""
    seconds = (n * classes + n_real) / img_per_s
    if seconds <= SLOW_SCORE_SECONDS:
        return None
    return (
        f"scoring samples {n:,} images per class x {classes} class(es), and reads {n_real:,} real ones: about "
        f"{seconds / 60:.0f} minutes of the FID network alone at the {img_per_s:.0f} img/s measured here; "
        "lower it with --n (e.g. --n 200) or --classes"
    )


@scoped
def score(
    config: ScoreConfig | None = None,
    /,
    *,
    run: PathLike | None = None,
    images: PathLike | None = None,
    data: PathLike | None = None,
    out: PathLike | None = None,
    overwrite: bool = False,
    device: str = "auto",
    inception_weights: PathLike | None = None,
    sample_options: Mapping[str, Any] | Sequence[str] | None = None,
    allow_different_data: bool = False,
    reporter: Reporter | None = None,
    warn: Warn | None = None,
    plan_only: bool = False,
    say: Say | None = None,
    **kwargs: Any,
) -> Scores:
    """FID / KID and more per class (``cxraug score``) of a run's generator (``run=``) or a
    synthetic set (``images=``) against real images of ``data`` (default: the data the generator
    was trained on). Options of :class:`ScoreConfig` (split, n, classes, metrics, ...) as a config
    or keywords. Its plan (images to draw and extract, the time measured on a few) goes to
    ``say`` before any image is drawn; ``plan_only=True`` returns it, writing nothing. Returns
    the score folder, its table and the plan."""
    import pandas as pd

    from cxraug.data.prepared import check_trained_on, dataset_files, open_prepared
    from cxraug.fsutil import check_appendable, check_output
    from cxraug.metrics.features import load_feature_extractor, resolve_device
    from cxraug.metrics.inception import locate_inception_weights
    from cxraug.metrics.report import default_out_dir, write_outputs
    from cxraug.metrics.score import ScoreConfig
    from cxraug.metrics.score import score as run_score
    from cxraug.metrics.workplan import extraction_plan

    configure()
    cfg = with_options(ScoreConfig, config, kwargs)
    default_n = cfg.n == ScoreConfig.n  # an n the user chose is theirs; the default one is said
    if (run is None) == (images is None):
        raise UserError("pass either --run RUN (sample its generator) or --images DIR (a `cxraug synth` set)")
    cfg.validate()  # every option before loading anything slow or touching an image
    resolve_device(device)
    with contextlib.ExitStack() as locks:  # one writer per score folder
        weights = locate_inception_weights(as_path(inception_weights))  # missing weights: fail before sampling
        source, owner, trained, inputs, step = _score_source(run, images, cfg, device, set_items(sample_options))
        if data is None and not trained.get("path"):
            raise UserError("the generator's training data is not recorded; pass --data DATA")
        prepared = open_prepared(data or trained["path"])
        if not allow_different_data:  # as compare does: a number on other data is not this run's
            check_trained_on(prepared, {owner.name: trained}, "pass --allow-different-data to score on it anyway")
        planned: list[ExtractionPlan] = []

        def before_work(classes: list[str]) -> None:  # every check passed, no image drawn yet
            plan = extraction_plan("score", prepared, classes, cfg, {owner.name: source}, extractor)
            planned.append(plan)
            say_lines(say, plan.lines())
            if plan_only:
                raise PlanOnly

        if plan_only:  # before any output folder or lock
            extractor = load_feature_extractor(weights, device)
            with contextlib.suppress(PlanOnly):
                run_score(prepared, source, cfg, extractor, before_work=before_work)
            return Scores(out=None, table=None, result=None, plan=planned[0])
        where = as_path(out, "out") if out is not None else default_out_dir(owner, cfg.split, step)
        check_output(where, "score folder", "scores.json", [*inputs, *dataset_files(prepared.root)], overwrite)
        locks.enter_context(output_lock(where, "score folder"))  # also fails now, not after the work, if unwritable
        check_appendable(owner / "metrics.jsonl")  # the run's log takes the result's line after the work
        extractor = load_feature_extractor(weights, device)
        slow = _slow_score(prepared, cfg, extractor) if run is not None and default_n else None
        if slow:  # sampling a run at the default n: the one case that can take an hour unannounced
            (warn or default_warn)(slow)
        result = run_score(prepared, source, cfg, extractor, reporter, before_work=before_work)
        write_outputs(result, where, owner / "metrics.jsonl", overwrite=overwrite)
    return Scores(out=where, table=pd.read_csv(where / "scores.csv"), result=result, plan=planned[0])


def _slow_score(prepared: PreparedData, cfg: ScoreConfig, extractor: FeatureExtractor) -> str | None:
    """The warning for the images a score will read, if they take more than a few minutes."""
    from cxraug.classes import resolve_classes
    from cxraug.runtime import thread_count

    counts = prepared.counts(cfg.split)
    present = [c for c, k in counts.items() if k]
    try:
        classes = resolve_classes(cfg.classes, present) if cfg.classes else present
    except ValueError:
        return None  # score names the bad class itself
    n_real = sum(counts.get(c, 0) for c in classes)
    optimistic = FASTEST_IMG_PER_S_PER_THREAD * thread_count()
    if slow_score_warning(cfg.n, len(classes), n_real, optimistic) is None:
        return None  # fast enough even at the best speed: not worth timing
    return slow_score_warning(cfg.n, len(classes), n_real, measure_img_per_s(extractor, prepared.size))


def _score_source(
    run: PathLike | None, images: PathLike | None, cfg: ScoreConfig, device: str, sets: list[str]
) -> tuple[FakeSource, Path, dict, list[Path], int | None]:
    """The synthetic images, the folder that owns the results, the generator's training data
    as its run recorded it (path, fingerprint, identity), the files read, and the generator's step."""
    from cxraug.metrics.sources import generator_source, images_source

    if images is not None:
        from cxraug.synthset import open_synthetic, set_files

        syn = open_synthetic(images)
        if sets:
            raise UserError("--set applies to --run (sampling now); a synthetic set is already sampled")
        trained = syn.provenance.get("data")
        trained = trained if isinstance(trained, dict) else {}
        return images_source(syn), as_path(images, "images"), trained, set_files(syn.root), syn.provenance.get("step")
    from cxraug.config import parse_sets
    from cxraug.metrics.features import resolve_device
    from cxraug.runs import load_generator, run_inputs

    assert run is not None
    gen, meta = load_generator(as_path(run, "run"))
    options = gen.parse_sample_options(parse_sets(sets))
    gen.to(resolve_device(device))
    info = {"run": str(as_path(run, "run").resolve()), "step": meta.get("step"), "plugin": meta.get("plugin")}
    source = generator_source(gen, seed=cfg.seed, batch_size=cfg.batch_size, options=options, info=info)
    return source, as_path(run, "run"), meta.get("data") or {}, run_inputs(as_path(run, "run")), meta.get("step")
