"""Planning a benchmark: every option and input checked, and the arms, quotas and step budget
resolved, before any training starts (every mistake surfaces in seconds)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from cxraug.benchmark.arms import (
    Arm,
    add_controls,
    check_synthetic_name,
    controlled_real_index,
    expand_arms,
    synthetic_quota,
)
from cxraug.benchmark.config import BenchmarkConfig
from cxraug.benchmark.plan import Plan, class_index, step_budget
from cxraug.benchmark.provenance import check_synthetic, controlled_caveats
from cxraug.benchmark.replicates import replicate_sets
from cxraug.classify.trainset import split_patients
from cxraug.data.prepared import dataset_files, open_prepared
from cxraug.errors import UserError
from cxraug.synthset import SyntheticSet, open_synthetic, set_files


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
        controlled_real_index(train_labels, split_patients(data, "train"), controlled, cfg.imbalance_seed, classes)
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
    plan = Plan(
        data=data, cfg=cfg, arms=arms, seeds=list(cfg.seeds), synthetic=synthetic, controlled=controlled,
        synthetic_classes=syn_classes, train_labels=train_labels, real_index=real_index, notes=notes,
    )  # fmt: skip
    plan.arm_sizes, plan.replicates = sizes, replicates
    budget = trained.get("budget") if trained is not None else None
    if isinstance(budget, dict):  # the budget the runs were trained with
        plan.steps, plan.evaluations = int(budget["steps"]), int(budget["evaluations"])
    else:
        plan.steps, plan.evaluations = step_budget(cfg, sizes)
    return plan


def benchmark_inputs(plan: Plan) -> list[Path]:
    """What a benchmark reads: the prepared dataset's files and each synthetic set's."""
    sets = {syn.root: syn for syn in [*plan.synthetic.values(), *(s for r in plan.replicates.values() for s in r)]}
    return [*dataset_files(plan.data.root), *(p for root in sets for p in set_files(root))]
