"""Helpers for generator tests: tiny runs on the phantom fixture."""

from __future__ import annotations

from pathlib import Path

from cxraug import registry
from cxraug.accel import process_state
from cxraug.config import TrainConfig
from cxraug.data.prepared import open_prepared
from cxraug.metrics.training import training_evaluation
from cxraug.train import RunSpec, start_run, train


def tiny_spec(plugin: str, data: Path, model: dict | None = None, **train_kw) -> RunSpec:
    cls = registry.get(plugin)
    t = {"steps": 4, "batch_size": 8, "log_every": 1, "sample_every": 0, "checkpoint_every": 2, "grid_per_class": 2}
    t.update(train_kw)
    return RunSpec(plugin, TrainConfig(**t), cls.Config(**{**cls.tiny_config(), **(model or {})}), Path(data))


def tiny_run(plugin: str, data: Path, runs_root: Path, model: dict | None = None, **train_kw) -> Path:
    spec = tiny_spec(plugin, data, model, **train_kw)
    run = start_run(spec, runs_root)
    evaluation = training_evaluation(spec.train, open_prepared(spec.data_path), process_state())  # as train-gen
    train(run, spec, evaluation=evaluation)
    return run


def phantom_prepare_argv(out: Path, n: int = 180) -> list[str]:
    """`cxraug prepare` of a tiny phantom set (32 px, one worker), as the CLI tests type it."""
    return ["prepare", "--source", "phantom", "--n", str(n), "--size", "32", "--workers", "1", "--out", str(out)]
