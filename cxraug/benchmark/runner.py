"""Plan a benchmark, run every arm x seed not done yet, and write the report.

Output folder:
  benchmark.json                 the resolved options, the dataset, the arms and seeds
  runs/<arm>/seed-<s>/           one trained model's record, written atomically when done:
      result.json                its resume key, training-set counts, history, thresholds, times
      predictions.npz            validation and test probabilities and labels, each row's index
                                 in its split and patient id, and the schema version
  results.csv, runs.csv, results.json, summary.md, *.png     the report (rebuilt every time)

Stored predictions are checked against the dataset's split order whenever they are read
(schema 1, from before row indices were stored, through their labels); ``report_only``
rebuilds the report from them without training.

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

import shutil
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

from cxraug.benchmark.arms import (
    Arm,
    add_controls,
    build_train_set,
    check_synthetic_name,
    controlled_real_index,
    expand_arms,
    synthetic_quota,
)
from cxraug.benchmark.config import REPORT_KEYS, BenchmarkConfig
from cxraug.benchmark.plan import Plan, RunRecord, class_index, rare_classes, step_budget
from cxraug.benchmark.provenance import check_synthetic, controlled_caveats, synthetic_fingerprint
from cxraug.benchmark.question import declare
from cxraug.benchmark.replicates import replicate_sets
from cxraug.benchmark.spread import OneProcess, Spread, resolve_spread, share
from cxraug.classify.trainset import split_patients
from cxraug.data.identity import describe_difference
from cxraug.data.prepared import PreparedData, dataset_files, fingerprint, open_prepared
from cxraug.errors import UserError
from cxraug.fsutil import atomic_dir, check_output, check_output_place, read_json, write_json
from cxraug.integrity import verify_sums, write_sums
from cxraug.progress import NullReporter, Reporter
from cxraug.synthset import SyntheticSet, open_synthetic, set_files

MARKER = "benchmark.json"
# 2: every arm trains the same number of optimiser steps, with matched controls and a declared
# question. Runs of format 1 (an epoch per arm's own training set) are not comparable.
FORMAT = 2
# Every file a benchmark writes at the top of its folder: --overwrite deletes these (and runs/,
# and its own temporaries), never a file a user put beside them.
RESULT, PREDICTIONS = "result.json", "predictions.npz"
PREDICTIONS_SCHEMA = 2  # 2: + val/test row index and patient id; 1: probabilities and labels only
REPORT_FILES = ("results.csv", "runs.csv", "results.json", "summary.md")
OWN_FILES = frozenset({
    MARKER, *REPORT_FILES, "verdicts.csv", "summary.html", "class_auroc.png", "roc_curves.png",
    "confusion_matrices.png",
})  # fmt: skip
BARRIER_HOURS = 24  # how long a process may wait for the others at a barrier


def make_plan(data_path: Path, cfg: BenchmarkConfig, trained: dict | None = None) -> Plan:
    """Everything checked before any training starts: every mistake surfaces in seconds.

    ``trained`` (the stored benchmark.json, for a report of runs already trained): a synthetic
    set that is gone costs only its sample grid, and the sets' sizes are not checked again."""
    from cxraug.classify.models import MODELS

    data = open_prepared(data_path)
    for split in ("train", "val", "test"):
        if sum(data.counts(split).values()) == 0:
            raise UserError(f"{data.root} has no {split} images; the benchmark needs train, val and test patients")
    if cfg.model not in MODELS:
        raise UserError(f"unknown model {cfg.model!r}; known: {', '.join(MODELS)}")
    if cfg.weights is not None and not Path(cfg.weights).is_file():
        raise UserError(f"weights file {cfg.weights} does not exist")
    synthetic: dict[str, SyntheticSet] = {}
    notes: list[str] = []
    for name, path in cfg.synthetic.items():
        check_synthetic_name(name)
        if trained is not None and not Path(path).is_dir():
            notes.append(f"synthetic set {name} is no longer at {path}: its checks and sample grid are left out")
            continue
        syn = open_synthetic(path)
        notes += check_synthetic(name, syn, data)
        synthetic[name] = syn
    replicates = replicate_sets(cfg, data, synthetic, notes, trained is not None)
    classes = data.classes
    controlled = {class_index(c, classes, "--controlled-imbalance"): n for c, n in cfg.controlled_imbalance.items()}
    syn_classes = (
        {class_index(c, classes, "synthetic_classes") for c in cfg.synthetic_classes} if cfg.synthetic_classes else None
    )
    for c in cfg.rare_classes or []:
        class_index(c, classes, "rare_classes")
    if trained is not None and trained.get("arm_specs"):  # a report: exactly the arms that were trained
        arms = [Arm.from_spec(d) for d in trained["arm_specs"]]
    else:
        arms = expand_arms(cfg.arms, list(synthetic), cfg.ratios)
    if cfg.reference not in [a.name for a in arms]:
        notes.append(f"reference arm {cfg.reference!r} is not run: no paired differences are reported")
    train_labels = data.labels("train")
    real_index = (
        controlled_real_index(train_labels, _train_patients(data), controlled, cfg.imbalance_seed, classes)
        if controlled
        else np.arange(len(train_labels))
    )
    real_counts = np.bincount(train_labels[real_index], minlength=len(classes))
    from_specs = trained is not None and bool(trained.get("arm_specs"))
    quotas: dict[str, dict[int, int]] = {}
    for arm in arms:  # a synthetic set too small for its ratio is refused before any training
        if arm.synthetic is not None and not from_specs:
            labels = synthetic[arm.synthetic].manifest()["label"].to_numpy(dtype=np.int64)  # type: ignore[index]
            allowed = syn_classes if arm.kind == "synthetic" else None
            set_counts = np.bincount(labels, minlength=len(classes))
            quotas[arm.name] = synthetic_quota(arm, real_counts, set_counts, allowed, classes)
    arms = [replace(a, quota=tuple(sorted(quotas[a.name].items()))) if a.name in quotas else a for a in arms]
    if not from_specs:
        if not cfg.controls and not any(a.kind == "synthetic" for a in arms):
            raise UserError("--no-controls drops the controls of synthetic arms, and no synthetic arm is run; drop it")
        if cfg.controls:
            arms = add_controls(arms, {a.name: dict(a.quota) for a in arms if a.kind == "synthetic"})
    sizes = {a.name: (0 if a.kind == "synthetic-only" else len(real_index)) + sum(n for _, n in a.quota) for a in arms}
    kept = {classes[c]: n for c, n in controlled.items()}
    for name, syn in synthetic.items():
        if any(a.synthetic == name for a in arms):
            notes += controlled_caveats(name, syn, data, kept)
    if trained is not None:  # notes of sets that are gone, as the training run wrote them
        notes += [n for n in trained.get("notes", []) if n not in notes]
    plan = Plan(data, cfg, arms, list(cfg.seeds), synthetic, controlled, syn_classes, train_labels, real_index, notes)
    plan.arm_sizes, plan.replicates = sizes, replicates
    budget = trained.get("budget") if trained is not None else None
    if isinstance(budget, dict):  # the budget the runs were trained with
        plan.steps, plan.evaluations = int(budget["steps"]), int(budget["evaluations"])
    else:
        plan.steps, plan.evaluations = step_budget(cfg, sizes)
    return plan


def check_same_data(out: Path, data: PreparedData, stored: dict) -> None:
    """Runs stored in ``out`` are reused only on the dataset they were trained on."""
    old = stored.get("data") if isinstance(stored, dict) else None
    old = old if isinstance(old, dict) else {}
    if old.get("fingerprint") != fingerprint(data):
        raise UserError(
            f"{out} holds runs trained on another dataset than {data.root} "
            f"({describe_difference(old.get('identity'), data.identity)}); "
            "use another --out, or --overwrite to train again"
        )


def benchmark_inputs(plan: Plan) -> list[Path]:
    """What a benchmark reads: the prepared dataset's files and each synthetic set's."""
    sets = {syn.root: syn for syn in [*plan.synthetic.values(), *(s for r in plan.replicates.values() for s in r)]}
    return [*dataset_files(plan.data.root), *(p for root in sets for p in set_files(root))]


def _check_out(out: Path, inputs: list[Path]) -> None:
    """--out may be a new folder or a benchmark's own (continued: finished runs are reused)."""
    check_output_place(out, inputs)
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).is_file():
        raise UserError(f"--out {out} exists and is not a benchmark output folder; choose another --out")


def _prepare_out(out: Path, overwrite: bool) -> None:
    """After _check_out: clear what --overwrite replaces, and make the folder."""
    if overwrite and (out / MARKER).is_file():
        shutil.rmtree(out / "runs", ignore_errors=True)
        for f in out.iterdir():
            if f.name in OWN_FILES and f.is_file() and not f.is_symlink():
                f.unlink()
            elif _own_temporary(f):
                shutil.rmtree(f, ignore_errors=True) if f.is_dir() else f.unlink()
    out.mkdir(parents=True, exist_ok=True)


def _own_temporary(f: Path) -> bool:
    """A staging folder (.NAME.partial) or a temporary file (.NAME.XXXX.tmp) left by a killed
    write of one of the benchmark's own outputs."""
    if f.is_symlink() or not f.name.startswith("."):
        return False
    if f.is_dir():
        return f.suffix == ".partial"
    return f.suffix == ".tmp" and any(f.name.startswith(f".{name}.") for name in OWN_FILES)


def run_key(plan: Plan, arm: Arm, seed: int, world_size: int) -> dict:
    """What a trained model depends on; a stored run is reused only if this matches."""
    key = {
        "data_fingerprint": fingerprint(plan.data),
        "classes": plan.classes,
        **plan.cfg.training_dict(),
        "steps": plan.steps,
        "evaluations": plan.evaluations,
        "arm": arm.name,
        "kind": arm.kind,
        "seed": seed,
        "world_size": world_size,
    }
    if arm.kind == "classic" or arm.augment:
        key["augment"] = plan.cfg.augment.model_dump()
    if arm.kind == "logit-adjust":
        key["logit_tau"] = plan.cfg.logit_tau
    if arm.quota:
        key["added"] = [list(q) for q in arm.quota]
    if arm.synthetic is not None:
        syn = plan.synthetic_set(arm.synthetic, seed)
        if plan.n_replicates(arm.synthetic) > 1:
            key["replicate"] = plan.replicate_index(arm.synthetic, seed)
        key["synthetic"] = {
            "name": arm.synthetic,
            # A report of a set that is gone cannot hash it again: its runs' stored hash stands.
            "fingerprint": synthetic_fingerprint(syn) if syn is not None else None,
            "ratio": arm.ratio.text if arm.ratio else None,
            "classes": sorted(plan.cfg.synthetic_classes or []) if arm.kind == "synthetic" else None,
        }
    return key


def check_format(out: Path, stored: dict) -> None:
    """Runs of an earlier benchmark format are never mixed with, or reported as, today's."""
    if stored.get("format") != FORMAT:
        raise UserError(
            f"{out} holds a benchmark made by an earlier cxraug, whose arms trained for unequal numbers of steps "
            "and had no matched controls: its runs are not comparable with today's; use another --out, or "
            "--overwrite to train again"
        )


def same_key(old: dict, new: dict) -> bool:
    """Keys match; a synthetic fingerprint of None (the set is gone) matches the stored one."""
    if isinstance(new.get("synthetic"), dict) and new["synthetic"].get("fingerprint") is None:
        old_syn = old.get("synthetic") if isinstance(old.get("synthetic"), dict) else {}
        new = {**new, "synthetic": {**new["synthetic"], "fingerprint": old_syn.get("fingerprint")}}
    return old == new


def _key_difference(old: dict, new: dict) -> str:
    diff = [k for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
    return ", ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in diff[:3])


def run_dir(out: Path, arm: str, seed: int) -> Path:
    return out / "runs" / arm / f"seed-{seed}"


def load_run(path: Path) -> tuple[dict, dict[str, np.ndarray]]:
    """A stored run, verified: a damaged one is refused with one line, never used."""
    import zipfile

    verify_sums(path, "stored benchmark run")
    result = read_json(path / RESULT)
    try:
        with np.load(path / PREDICTIONS) as z:
            preds = {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise UserError(
            f"the stored benchmark run {path} is damaged ({PREDICTIONS}: {type(e).__name__}); delete that folder to rebuild it"
        ) from None
    if not isinstance(result, dict):
        raise UserError(f"the stored benchmark run {path} is damaged ({RESULT}); delete that folder to rebuild it")
    return result, preds


def _train_patients(data: PreparedData) -> np.ndarray:
    return split_patients(data, "train")


def row_identity(labels: np.ndarray, patients: np.ndarray) -> dict[str, np.ndarray]:
    """What stored predictions carry to say which test image each row is."""
    return {"index": np.arange(len(labels)), "patient": patients.astype(str)}


def check_predictions(where: Path, preds: dict[str, np.ndarray], split: str, labels: np.ndarray, patients) -> None:
    """Stored predictions of a split must be its rows in the dataset's order: refused otherwise."""
    version = int(preds.get("schema_version", 1))
    if version > PREDICTIONS_SCHEMA:
        raise UserError(
            f"{where} holds predictions of schema {version}; this cxraug reads up to {PREDICTIONS_SCHEMA}: "
            "update cxraug"
        )
    got = preds.get(f"{split}_labels")
    if got is None or f"{split}_probs" not in preds:
        raise UserError(f"{where} holds no {split} predictions; train it again with --overwrite")
    same = len(got) == len(labels) and np.array_equal(got, labels) and len(preds[f"{split}_probs"]) == len(labels)
    if version >= 2:
        idx, pid = preds.get(f"{split}_index"), preds.get(f"{split}_patient")
        same = same and idx is not None and pid is not None and np.array_equal(idx, np.arange(len(labels)))
        same = same and np.array_equal(np.asarray(pid, dtype=str), np.asarray(patients, dtype=str))
    if not same:
        raise UserError(
            f"{where}: the stored {split} predictions are not the dataset's {len(labels)} {split} images in "
            "its order (was the dataset prepared again?); use another --out, or --overwrite to train again"
        )


def _make_accelerator(cfg: BenchmarkConfig):
    from cxraug.accel import check_mixed_precision, make_accelerator

    check_mixed_precision(cfg.mixed_precision, f"mixed_precision={cfg.mixed_precision}", force_cpu=cfg.cpu)
    # The long timeout is for the last barrier of --spread runs: a process whose share is done
    # waits there for the others' last runs, which may take hours at 256 px.
    return make_accelerator(mixed_precision=cfg.mixed_precision, force_cpu=cfg.cpu, barrier_hours=BARRIER_HOURS)


def _world_hint(stored: object, now: int) -> str:
    """What to launch to match runs trained by another number of processes per model."""
    if stored == now or not isinstance(stored, int):
        return ""
    if stored == 1:
        return "its models were each trained on one process: run with --spread runs (any number of processes), or "
    return f"its models were each trained by DDP over {stored} processes: launch {stored} with --spread ddp, or "


def _stored_runs(
    out: Path, keys: dict[tuple[str, int], dict], test_labels: np.ndarray, test_patients: np.ndarray
) -> dict[tuple[str, int], tuple[dict, dict[str, np.ndarray]]]:
    """The stored runs, read and verified; one trained with other settings, or on other test
    rows, is refused before anything is trained."""
    stored = {}
    for (arm_name, seed), key in keys.items():
        path = run_dir(out, arm_name, seed)
        if not (path / RESULT).is_file():
            continue
        result, preds = load_run(path)
        old = result.get("key", {})
        if not same_key(old, key):
            raise UserError(
                f"{path} was trained with other settings ({_key_difference(old, key)}); "
                f"{_world_hint(old.get('world_size'), key['world_size'])}"
                "use another --out, or --overwrite to start again"
            )
        check_predictions(path, preds, "test", test_labels, test_patients)
        stored[(arm_name, seed)] = (result, preds)
    return stored


def run_benchmark(
    data_path: Path,
    cfg: BenchmarkConfig,
    out: Path,
    overwrite: bool = False,
    reporter: Reporter | None = None,
    spread: Spread = "auto",
    before_training: Callable[[Plan, list[int], str, int], None] | None = None,
):
    """Run what is missing of arms x seeds into ``out``, then write and return the report.

    Under several processes (``accelerate launch``, ``torchrun``) ``spread`` says how they
    share the work (see :mod:`cxraug.benchmark.spread`); only the main process builds, writes
    and returns the report, the others return None. ``before_training(plan, rare, rule,
    pending)`` runs on every process once every check has passed and before anything is
    written (the command prints its plan there, and may stop with a UserError)."""
    from cxraug.benchmark.aggregate import build_report
    from cxraug.benchmark.training import train_run

    reporter = reporter or NullReporter()
    plan = make_plan(Path(data_path), cfg)
    accelerator = _make_accelerator(cfg)
    out = Path(out)
    _check_out(out, benchmark_inputs(plan))  # before any stored run is read
    previous: dict | None = None
    if not overwrite and (out / MARKER).is_file():  # on every process: all stop alike
        previous = read_json(out / MARKER)
        if not isinstance(previous, dict):
            raise UserError(f"{out / MARKER} is not a benchmark record; use another --out, or --overwrite")
        check_format(out, previous)
        check_same_data(out, plan.data, previous)
    rare, rule = rare_classes(plan)
    question = declare(plan, rare)

    data, train_labels, real_index = plan.data, plan.train_labels, plan.real_index
    real_train = data.images("train")
    val = (np.asarray(data.images("val")), data.labels("val"))
    test = (np.asarray(data.images("test")), data.labels("test"))
    patients = {"val": split_patients(data, "val"), "test": split_patients(data, "test")}

    jobs = [(a, s) for a in plan.arms for s in plan.seeds]
    world, rank = accelerator.num_processes, accelerator.process_index
    mode = resolve_spread(spread, len(jobs), world)
    per_model = 1 if mode == "runs" else world  # processes that train one model: its resume key
    keys = {(a.name, s): run_key(plan, a, s, per_model) for a, s in jobs}
    # Settings changed? Said before training, and before benchmark.json is touched.
    stored = {} if overwrite else _stored_runs(out, keys, test[1], patients["test"])
    pending = [(a, s) for a, s in jobs if (a.name, s) not in stored]
    if previous is not None and _any_run(out):
        # Runs exist, so test results may have been seen: the question declared then stands.
        question = previous.get("question", question)
    if before_training is not None:
        before_training(plan, rare, rule, len(pending))
    if accelerator.is_main_process:
        _prepare_out(out, overwrite)
        write_json(
            out / MARKER,
            {
                "format": FORMAT,
                "data": {
                    "path": str(plan.data.root.resolve()),
                    "fingerprint": fingerprint(plan.data),
                    "identity": plan.data.identity,
                },
                "config": cfg.model_dump(mode="json"),
                "arms": [a.name for a in plan.arms],
                "arm_specs": [a.spec() for a in plan.arms],
                "seeds": plan.seeds,
                "budget": {"steps": plan.steps, "evaluations": plan.evaluations, "batch_size": cfg.batch_size},
                "question": question,
                "notes": plan.notes,
                "predictions_schema": PREDICTIONS_SCHEMA,
                "updated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            },
        )
    accelerator.wait_for_everyone()  # every process has seen the same pending runs: none is stored yet
    # Each set is read once, here, and checked against the fingerprint its runs are keyed by:
    # a set replaced while the benchmark runs is never half-used.
    loaded = _load_sets(plan, [(a, seed) for a, seed in pending if a.synthetic], keys)
    mine = share(pending, rank, world) if mode == "runs" else pending
    trainer = OneProcess(accelerator) if mode == "runs" and world > 1 else accelerator
    desc = (
        f"benchmark: {len(plan.arms)} arms x {len(plan.seeds)} seeds, {len(pending)} to train, "
        f"{plan.steps} steps of batch {cfg.batch_size} each"
    )
    if world > 1:
        desc += f" ({mode} over {world} processes; this one: {len(mine)})"
    with reporter.task(desc, len(mine)) as advance:
        for arm, seed in mine:
            path = run_dir(out, arm.name, seed)
            ts = build_train_set(
                arm, train_labels, real_index, plan.classes, seed, _sets_of(plan, loaded, arm, seed),
                plan.synthetic_classes, real_train, cfg.logit_tau,
            )  # fmt: skip
            output = train_run(ts, real_train, val, test, cfg, seed, trainer, plan.steps, plan.evaluations)
            result = {
                "key": keys[(arm.name, seed)],
                "arm": arm.name,
                "seed": seed,
                "best_check": output.best_epoch,
                "best_step": output.best_step,
                "steps": output.steps,
                "evaluations": plan.evaluations,
                "epochs": cfg.epochs,
                "history": output.history,
                "thresholds": output.thresholds.tolist(),
                "train_real": ts.real_counts().tolist(),
                "train_synthetic": ts.synth_counts().tolist(),
                "seconds": round(output.seconds, 3),
                "device": output.device,
                "num_processes": per_model,
                "spread": mode,
                "process_index": rank,
                "launched_processes": world,
                "predictions_schema": PREDICTIONS_SCHEMA,
                "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            }
            preds = {"schema_version": np.int64(PREDICTIONS_SCHEMA)}
            for split, probs, labels in (("val", output.val_probs, output.val_labels),
                                         ("test", output.test_probs, output.test_labels)):  # fmt: skip
                rows = row_identity(labels, patients[split])
                preds |= {f"{split}_probs": probs, f"{split}_labels": labels,
                          f"{split}_index": rows["index"], f"{split}_patient": rows["patient"]}  # fmt: skip
            check_predictions(path, preds, "test", test[1], patients["test"])  # before it is ever stored
            if mode == "runs" or accelerator.is_main_process:  # the process that holds the whole model
                with atomic_dir(path, overwrite=True) as stage:
                    write_json(stage / RESULT, result)
                    np.savez_compressed(stage / PREDICTIONS, **preds)
                    write_sums(stage, [RESULT, PREDICTIONS])
            if mode == "ddp":
                accelerator.wait_for_everyone()
            advance(1)
    accelerator.wait_for_everyone()  # every run is stored
    if not accelerator.is_main_process:
        return None

    records: list[RunRecord] = []
    for arm, seed in jobs:  # the run folders are the record, whichever process wrote them
        path = run_dir(out, arm.name, seed)
        reused = (arm.name, seed) in stored
        result, preds = stored[(arm.name, seed)] if reused else load_run(path)
        if not reused:
            check_predictions(path, preds, "test", test[1], patients["test"])
        records.append(RunRecord(arm.name, seed, result, preds, reused=reused))
    report = build_report(plan, records, real_index, train_labels, patients["test"], reporter, declared=question)
    write_whole_report(report, out)
    return report


def _any_run(out: Path) -> bool:
    return any((out / "runs").glob(f"*/seed-*/{RESULT}"))


def _load_sets(
    plan: Plan, runs: list[tuple[Arm, int]], keys: dict
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


def write_whole_report(report: object, out: Path) -> None:
    """The report files all, or none: a failure part way (a full disk) removes the ones written,
    so no results.csv is left without its summary.md. The stored runs stay: a rerun reuses them."""
    from cxraug.benchmark.report import write_report

    before = {p.name for p in out.iterdir()}
    try:
        write_report(report, out)
    except BaseException:
        for p in out.iterdir():
            if p.is_file() and p.name not in before | {MARKER}:
                p.unlink(missing_ok=True)
        for name in ("results.csv", "runs.csv", "verdicts.csv", "summary.md"):
            (out / name).unlink(missing_ok=True)  # an earlier report's tables would now be stale
        raise


def report_only(
    out: Path,
    sets: list[str] | None = None,
    config_file: Path | None = None,
    data_path: Path | None = None,
    reporter: Reporter | None = None,
):
    """Rebuild every table, plot and verdict of ``out`` from its stored predictions, with the
    stored options overridden by reporting options only (never retrains anything)."""
    from cxraug.benchmark.aggregate import build_report
    from cxraug.benchmark.config import parse_set
    from cxraug.config import load_config_file, validated

    out = Path(out)
    if not (out / MARKER).is_file():
        raise UserError(f"--report-only {out} is not a benchmark output folder (no {MARKER})")
    stored = read_json(out / MARKER)
    if not isinstance(stored, dict):
        raise UserError(f"{out / MARKER} is not a benchmark record (not a JSON object); run the benchmark again")
    check_format(out, stored)
    over = {**load_config_file(config_file), **parse_set(sets or [])}
    training = sorted(k for k in over if k not in REPORT_KEYS)
    if training:
        raise UserError(
            f"--report-only changes reporting options only ({', '.join(REPORT_KEYS)}); "
            f"{', '.join(training)} would need training: run the benchmark without --report-only"
        )
    cfg = validated(BenchmarkConfig, {**stored.get("config", {}), **over}, "option")
    path = Path(data_path) if data_path else Path(stored.get("data", {}).get("path", ""))
    plan = make_plan(path, cfg, trained=stored)
    check_same_data(out, plan.data, stored)
    plan.seeds = [s for s in plan.seeds if s in stored.get("seeds", [])]
    labels, patients = plan.data.labels("test"), split_patients(plan.data, "test")
    records, missing = [], []
    for arm in plan.arms:
        for seed in plan.seeds:
            path = run_dir(out, arm.name, seed)
            if not (path / RESULT).is_file():
                missing.append(str(path))
                continue
            result, preds = load_run(path)
            # The report says what was run: every run's own key must be what benchmark.json says.
            old = result.get("key") if isinstance(result.get("key"), dict) else {}
            expected = run_key(plan, arm, seed, int(old.get("world_size") or 1))
            if not same_key(old, expected):
                raise UserError(
                    f"{path} was trained with other settings than {out / MARKER} records "
                    f"({_key_difference(old, expected)}); it cannot be reported as part of this benchmark: "
                    "remove that run folder and run the benchmark again"
                )
            check_predictions(path, preds, "test", labels, patients)
            records.append(RunRecord(arm.name, seed, result, preds, reused=True))
    if missing:
        raise UserError(
            f"{len(missing)} of {len(plan.arms) * len(plan.seeds)} runs are not finished (e.g. {missing[0]}); "
            "run the benchmark command again to finish them"
        )
    report = build_report(plan, records, plan.real_index, plan.train_labels, patients, reporter,
                          declared=stored.get("question"))  # fmt: skip
    write_whole_report(report, out)
    return report


def export_reduced(data_path: Path, cfg: BenchmarkConfig, out: Path, overwrite: bool = False) -> Path:
    """Write the controlled-imbalance training set (same val/test) as a prepared dataset."""
    from cxraug.benchmark.reduced import write_reduced

    plan = make_plan(Path(data_path), cfg)
    if not plan.controlled:
        raise UserError("--export-reduced needs --controlled-imbalance CLASS=N (what to reduce)")
    kept = {plan.classes[c]: n for c, n in plan.controlled.items()}
    check_output(out, "prepared dataset", "dataset.json", benchmark_inputs(plan), overwrite)
    return write_reduced(plan.data, plan.real_index, kept, cfg.imbalance_seed, out, overwrite)
