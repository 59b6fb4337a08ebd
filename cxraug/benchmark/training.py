"""Train one classifier for one arm and seed (the classifier core's fit and select), choose
per-class thresholds on its validation probabilities, and only then predict the test split, once."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from cxraug.accel import Trainer
from cxraug.benchmark.config import BenchmarkConfig
from cxraug.classify.fit import eval_loader, fit_select, predict
from cxraug.classify.scores import choose_thresholds
from cxraug.classify.trainset import TrainSet


@dataclass
class RunOutput:
    best_epoch: int  # the selected validation check, from 1
    best_step: int
    steps: int
    history: list[dict]
    thresholds: np.ndarray
    val_probs: np.ndarray
    val_labels: np.ndarray
    test_probs: np.ndarray
    test_labels: np.ndarray
    seconds: float
    device: str
    extra: dict = field(default_factory=dict)


def train_run(
    ts: TrainSet,
    real_train: np.ndarray,
    val: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    cfg: BenchmarkConfig,
    seed: int,
    accelerator: Trainer,
    steps: int,
    evaluations: int,
) -> RunOutput:
    """One run of ``steps`` optimiser steps (the same for every arm of a benchmark)."""
    t0 = time.perf_counter()
    ccfg = cfg.classifier(steps, evaluations)
    fitted = fit_select(ts, real_train, val, ccfg, seed, accelerator)
    thresholds = choose_thresholds(fitted.val_labels, fitted.val_probs)
    test_loader = accelerator.prepare(eval_loader(*test, ccfg))
    test_probs, test_labels = predict(fitted.model, test_loader, accelerator)  # the one look at test
    accelerator.free_memory()
    return RunOutput(
        best_epoch=fitted.best_epoch,
        best_step=fitted.best_step,
        steps=fitted.steps,
        history=fitted.history,
        thresholds=thresholds,
        val_probs=fitted.val_probs,
        val_labels=fitted.val_labels,
        test_probs=test_probs,
        test_labels=test_labels,
        seconds=time.perf_counter() - t0,
        device=str(accelerator.device),
    )
