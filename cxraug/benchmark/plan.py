"""What a benchmark is about to do (``Plan``, checked before any training) and one trained
model's stored record (``RunRecord``): the runner makes them, the report reads them, so they
live apart from both."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from cxraug.benchmark.arms import Arm
from cxraug.benchmark.config import BenchmarkConfig
from cxraug.classes import resolve_class
from cxraug.data.prepared import PreparedData
from cxraug.errors import UserError
from cxraug.synthset import SyntheticSet


@dataclass
class Plan:
    data: PreparedData
    cfg: BenchmarkConfig
    arms: list[Arm]
    seeds: list[int]
    synthetic: dict[str, SyntheticSet]
    controlled: dict[int, int]  # class index -> images kept
    synthetic_classes: set[int] | None
    train_labels: np.ndarray  # labels of the whole prepared training split
    real_index: np.ndarray  # its rows every arm starts from (all, or a controlled imbalance)
    notes: list[str] = field(default_factory=list)
    steps: int = 0  # optimiser steps of every arm and seed
    evaluations: int = 0  # validation checks per run
    arm_sizes: dict[str, int] = field(default_factory=dict)  # arm -> training images
    replicates: dict[str, list[SyntheticSet]] = field(default_factory=dict)  # NAME -> its replicate sets

    def n_replicates(self, name: str | None) -> int:
        """Generator replicates of a synthetic set (1: one trained generator)."""
        return max(1, len(self.cfg.synthetic_replicates.get(name or "", [])))

    def replicate_index(self, name: str | None, seed: int) -> int:
        """Which replicate classifier seed ``seed`` trains with: the seeds take them in turn."""
        return self.seeds.index(seed) % self.n_replicates(name)

    def synthetic_set(self, name: str, seed: int) -> SyntheticSet | None:
        """The set of ``name`` that ``seed`` trains with (None: gone, in a report of stored runs)."""
        if name in self.replicates:
            return self.replicates[name][self.replicate_index(name, seed)]
        return self.synthetic.get(name)

    @property
    def classes(self) -> list[str]:
        return self.data.classes

    @property
    def train_counts(self) -> np.ndarray:
        """Real training images per class every arm starts from."""
        return np.bincount(self.train_labels[self.real_index], minlength=len(self.classes))


def step_budget(cfg: BenchmarkConfig, arm_sizes: dict[str, int]) -> tuple[int, int]:
    """(steps, evaluations) of every run: ``steps`` if set, else what the largest arm's training
    set needs for ``epochs`` passes, so no arm trains less than before and none more than another."""
    largest = max(arm_sizes.values(), default=1)
    steps = cfg.steps or cfg.epochs * max(1, -(-largest // cfg.batch_size))
    return steps, min(cfg.evaluations or cfg.epochs, steps)


def rare_classes(plan: Plan) -> tuple[list[int], str]:
    """The rare classes (indices) and the rule that chose them."""
    cfg, train_counts = plan.cfg, plan.train_counts
    if cfg.rare_classes:
        idx = sorted({class_index(c, plan.classes, "rare_classes") for c in cfg.rare_classes})
        return idx, "chosen with option rare_classes"
    total = max(int(train_counts.sum()), 1)
    below = {c for c in range(len(train_counts)) if train_counts[c] / total < cfg.rare_threshold}
    idx = sorted(below | set(plan.controlled))
    rule = f"classes below {cfg.rare_threshold:.0%} of the real training images ({total})"
    if plan.controlled:
        rule += ", plus the classes reduced by --controlled-imbalance"
    return idx, rule


@dataclass
class RunRecord:
    arm: str
    seed: int
    result: dict
    predictions: dict[str, np.ndarray]
    reused: bool


def class_index(name: str, classes: list[str], option: str) -> int:
    try:
        return classes.index(resolve_class(name, classes))
    except ValueError as e:
        raise UserError(f"{option}: {e}") from None
