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

    @property
    def classes(self) -> list[str]:
        return self.data.classes


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
