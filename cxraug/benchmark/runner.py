"""Run every arm x seed of a benchmark not done yet, and write the report.

The jobs live beside it: planning (:mod:`~cxraug.benchmark.planning`), the output folder and
its record (:mod:`~cxraug.benchmark.outfolder`), run keys (:mod:`~cxraug.benchmark.runkey`),
stored runs (:mod:`~cxraug.benchmark.storedruns`), the prediction schema
(:mod:`~cxraug.benchmark.predictions`), ``--report-only`` (:mod:`~cxraug.benchmark.reportonly`)
and ``--export-reduced`` (:mod:`~cxraug.benchmark.reduced`).

Resuming: a run folder whose key (options it depends on, the dataset and synthetic-set
fingerprints, arm, seed, processes per model) matches is reused as is; one with another key
is an error, so results of different settings are never mixed. More seeds or arms may be
added later.

Several processes: with ``spread="runs"`` each trains whole runs and stores them itself (see
:mod:`cxraug.benchmark.spread`); with ``"ddp"`` all train each run and the main one stores it.
Either way the main process waits for all at a barrier, then reads every run folder back and
builds the report.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from cxraug.benchmark.arms import Arm, build_train_set
from cxraug.benchmark.config import BenchmarkConfig
from cxraug.benchmark.outfolder import (
    MARKER,
    any_run,
    check_out,
    prepare_out,
    read_previous,
    run_dir,
    write_record,
    write_whole_report,
)
from cxraug.benchmark.plan import Plan, RunRecord, rare_classes
from cxraug.benchmark.planning import benchmark_inputs, make_plan
from cxraug.benchmark.predictions import check_predictions, predictions_of
from cxraug.benchmark.provenance import synthetic_fingerprint
from cxraug.benchmark.question import declare
from cxraug.benchmark.runkey import run_key
from cxraug.benchmark.spread import Placement, Spread, resolve_spread, share
from cxraug.benchmark.storedruns import load_run, run_result, store_run, stored_runs
from cxraug.classify.trainset import split_patients
from cxraug.data.prepared import PreparedData
from cxraug.errors import UserError
from cxraug.progress import NullReporter, Reporter

if TYPE_CHECKING:
    from accelerate import Accelerator

    from cxraug.benchmark.aggregate import BenchmarkReport

BARRIER_HOURS = 24  # how long a process may wait for the others at a barrier
Job = tuple[Arm, int]  # an arm and a seed: one trained model
Stored = dict[tuple[str, int], tuple[dict, dict[str, np.ndarray]]]


@dataclass(frozen=True)
class Splits:
    """What every run of a benchmark is trained against: the real training images, validation
    and test (images, labels), and each validation and test row's patient."""

    real_train: np.ndarray
    val: tuple[np.ndarray, np.ndarray]
    test: tuple[np.ndarray, np.ndarray]
    patients: dict[str, np.ndarray]

    @classmethod
    def of(cls, data: PreparedData) -> Splits:
        return cls(
            real_train=data.images("train"),
            val=(np.asarray(data.images("val")), data.labels("val")),
            test=(np.asarray(data.images("test")), data.labels("test")),
            patients={"val": split_patients(data, "val"), "test": split_patients(data, "test")},
        )


def run_benchmark(
    data_path: Path,
    cfg: BenchmarkConfig,
    out: Path,
    overwrite: bool = False,
    reporter: Reporter | None = None,
    spread: Spread = "auto",
    before_training: Callable[[Plan, list[int], str, int], None] | None = None,
) -> BenchmarkReport | None:
    """Run what is missing of arms x seeds into ``out``, then write and return the report.

    Under several processes (``accelerate launch``, ``torchrun``) ``spread`` says how they
    share the work (see :mod:`cxraug.benchmark.spread`); only the main process builds, writes
    and returns the report, the others return None. ``before_training(plan, rare, rule,
    pending)`` runs on every process once every check has passed and before anything is
    written (the command prints its plan there, and may stop with a UserError)."""
    from cxraug.benchmark.aggregate import build_report

    reporter = reporter or NullReporter()
    plan = make_plan(Path(data_path), cfg)
    accelerator = _make_accelerator(cfg)
    out = Path(out)
    check_out(out, benchmark_inputs(plan))  # before any stored run is read
    # read on every process: all stop alike
    previous = read_previous(out, plan.data) if not overwrite and (out / MARKER).is_file() else None
    rare, rule = rare_classes(plan)
    question = declare(plan, rare)
    splits = Splits.of(plan.data)

    jobs = [(a, s) for a in plan.arms for s in plan.seeds]
    world = accelerator.num_processes
    mode = resolve_spread(spread, len(jobs), world)
    # per_model: processes that train one model, part of its resume key
    place = Placement(mode=mode, per_model=1 if mode == "runs" else world, rank=accelerator.process_index, world=world)
    keys = {(a.name, s): run_key(plan, a, s, place.per_model) for a, s in jobs}
    # Settings changed? Said before training, and before benchmark.json is touched.
    stored = {} if overwrite else stored_runs(out, keys, splits.test[1], splits.patients["test"])
    pending = [(a, s) for a, s in jobs if (a.name, s) not in stored]
    if previous is not None and any_run(out):
        # Runs exist, so test results may have been seen: the question declared then stands.
        question = previous.get("question", question)
    if before_training is not None:
        before_training(plan, rare, rule, len(pending))
    if accelerator.is_main_process:
        prepare_out(out, overwrite)
        write_record(out, plan, question)
    accelerator.wait_for_everyone()  # every process has seen the same pending runs: none is stored yet
    # Each set is read once, here, and checked against the fingerprint its runs are keyed by:
    # a set replaced while the benchmark runs is never half-used.
    loaded = _load_sets(plan, [(a, seed) for a, seed in pending if a.synthetic], keys)
    _train_pending(plan, pending, loaded, keys, splits, accelerator, place, out, reporter)
    accelerator.wait_for_everyone()  # every run is stored
    if not accelerator.is_main_process:
        return None
    records = _read_records(out, jobs, stored, splits)
    report = build_report(plan, records, plan.real_index, plan.train_labels, splits.patients["test"], reporter,
                          declared=question)  # fmt: skip
    write_whole_report(report, out)
    return report


def _train_pending(
    plan: Plan,
    pending: list[Job],
    loaded: dict[tuple[str, int], tuple[np.ndarray, np.ndarray]],
    keys: dict[tuple[str, int], dict],
    splits: Splits,
    accelerator: Accelerator,
    place: Placement,
    out: Path,
    reporter: Reporter,
) -> None:
    """Train and store this process's share of the pending runs (under ddp: every run, with
    the others; the main process stores it)."""
    from cxraug.accel import OneDevice
    from cxraug.benchmark.training import train_run

    cfg = plan.cfg
    mine = share(pending, place.rank, place.world) if place.mode == "runs" else pending
    trainer = OneDevice.within(accelerator) if place.mode == "runs" and place.world > 1 else accelerator
    desc = (
        f"benchmark: {len(plan.arms)} arms x {len(plan.seeds)} seeds, {len(pending)} to train, "
        f"{plan.steps} steps of batch {cfg.batch_size} each"
    )
    if place.world > 1:
        desc += f" ({place.mode} over {place.world} processes; this one: {len(mine)})"
    with reporter.task(desc, len(mine)) as advance:
        for arm, seed in mine:
            path = run_dir(out, arm.name, seed)
            ts = build_train_set(
                arm, plan.train_labels, plan.real_index, plan.classes, seed, _sets_of(plan, loaded, arm, seed),
                plan.synthetic_classes, splits.real_train, cfg.logit_tau,
            )  # fmt: skip
            output = train_run(ts, splits.real_train, splits.val, splits.test, cfg, seed, trainer, plan.steps,
                               plan.evaluations)  # fmt: skip
            result = run_result(keys[(arm.name, seed)], plan, arm.name, seed, output, ts, place)
            preds = predictions_of(output, splits.patients)
            check_predictions(path, preds, "test", splits.test[1], splits.patients["test"])  # before it is ever stored
            if place.mode == "runs" or accelerator.is_main_process:  # the process that holds the whole model
                store_run(path, result, preds)
            if place.mode == "ddp":
                accelerator.wait_for_everyone()
            advance(1)


def _read_records(out: Path, jobs: list[Job], stored: Stored, splits: Splits) -> list[RunRecord]:
    """Every run of the benchmark: the run folders are the record, whichever process wrote them."""
    records: list[RunRecord] = []
    for arm, seed in jobs:
        path = run_dir(out, arm.name, seed)
        reused = (arm.name, seed) in stored
        result, preds = stored[(arm.name, seed)] if reused else load_run(path)
        if not reused:
            check_predictions(path, preds, "test", splits.test[1], splits.patients["test"])
        records.append(RunRecord(arm.name, seed, result, preds, reused=reused))
    return records


def _make_accelerator(cfg: BenchmarkConfig) -> Accelerator:
    from cxraug.accel import check_mixed_precision, make_accelerator

    check_mixed_precision(cfg.mixed_precision, f"mixed_precision={cfg.mixed_precision}", force_cpu=cfg.cpu)
    # The long timeout is for the last barrier of --spread runs: a process whose share is done
    # waits there for the others' last runs, which may take hours at 256 px.
    return make_accelerator(mixed_precision=cfg.mixed_precision, force_cpu=cfg.cpu, barrier_hours=BARRIER_HOURS)


def _load_sets(
    plan: Plan, runs: list[Job], keys: dict[tuple[str, int], dict]
) -> dict[tuple[str, int], tuple[np.ndarray, np.ndarray]]:
    """The images of each set (and replicate) that pending runs use, read once and checked
    against the fingerprint their runs are keyed by."""
    loaded: dict[tuple[str, int], tuple[np.ndarray, np.ndarray]] = {}
    for arm, seed in runs:
        name, idx = str(arm.synthetic), plan.replicate_index(arm.synthetic, seed)
        if (name, idx) in loaded:
            continue
        syn = plan.synthetic_set(name, seed)
        if syn is None:
            raise UserError(f"synthetic set {name} is gone; its runs cannot be trained")
        loaded[(name, idx)] = syn.load()
        if synthetic_fingerprint(syn) != keys[(arm.name, seed)]["synthetic"]["fingerprint"]:
            raise UserError(
                f"synthetic set {name} ({syn.root}) changed while the benchmark was starting; "
                "run the benchmark again once it is complete"
            )
    return loaded


def _sets_of(
    plan: Plan, loaded: dict[tuple[str, int], tuple[np.ndarray, np.ndarray]], arm: Arm, seed: int
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The set an arm's run for ``seed`` trains with, by name (a replicated one: seed's replicate)."""
    if arm.synthetic is None:
        return {}
    return {arm.synthetic: loaded[(arm.synthetic, plan.replicate_index(arm.synthetic, seed))]}
