"""Options of ``cxraug benchmark``: one validated object, built from defaults < YAML file <
command-line options < ``--set key=value`` (dotted keys reach nested options)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from cxraug.classify.config import AugmentConfig, ClassifierConfig
from cxraug.classify.trainset import REAL_ARMS
from cxraug.config import deep_merge, load_config_file, parse_sets, validated
from cxraug.errors import UserError

BASELINE_ARMS = REAL_ARMS  # the cheap, non-synthetic arms: the best of them is the bar to beat
CONTROL_KINDS = ("copy", "noise")  # matched controls, added for every synthetic arm
# Options that change only the report: `--report-only` accepts these and no others.
REPORT_KEYS = (
    "rare_classes", "rare_threshold", "reference", "confidence", "min_test_patients",
    "bootstrap_draws", "bootstrap_seed", "adjust", "grid_per_class", "plots",
)  # fmt: skip


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())


class BenchmarkConfig(_Strict):
    # classifier
    model: str = "resnet18"
    weights: Path | None = None  # local file (safetensors or torch state dict); never downloaded
    epochs: int = Field(8, ge=1)  # passes over the LARGEST arm's training set: sets the step budget
    steps: int | None = Field(None, ge=1)  # optimiser steps of every arm (None: from epochs, see plan)
    evaluations: int | None = Field(None, ge=1)  # validation checks per run, evenly spaced (None: epochs)
    batch_size: int = Field(64, ge=1)
    eval_batch_size: int = Field(256, ge=1)
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(1e-4, ge=0)
    logit_tau: float = Field(1.0, gt=0, le=10)  # arm logit-adjust: logits + tau * log(prior) in training
    mixed_precision: Literal["no", "fp16", "bf16"] = "no"
    cpu: bool = False  # force the CPU even where a GPU is present
    num_workers: int = Field(0, ge=0)
    # experiment
    seeds: list[int] = Field(default_factory=lambda: [0, 1, 2])
    arms: list[str] | None = None  # None: the baselines + NAME and NAME+classic per synthetic set
    controls: bool = True  # copy and noise controls beside every synthetic arm
    ratios: list[str] = Field(default_factory=lambda: ["all"])  # every image of each synthetic set
    synthetic: dict[str, Path] = Field(default_factory=dict)  # NAME -> its set (a replicated one: the first)
    # NAME -> every set of a replicated generator (runs trained with other seeds; the first is
    # synthetic[NAME]). Given as synthetic: {NAME: [DIR1, DIR2]} or --synthetic NAME=DIR1,DIR2.
    synthetic_replicates: dict[str, list[Path]] = Field(default_factory=dict)
    synthetic_classes: list[str] | None = None  # add synthetic images of these classes only
    controlled_imbalance: dict[str, int] = Field(default_factory=dict)
    imbalance_seed: int = 0  # which patients a controlled imbalance keeps (same for every seed)
    augment: AugmentConfig = Field(default_factory=AugmentConfig)
    # reporting (changing these never retrains anything)
    rare_classes: list[str] | None = None  # None: below rare_threshold of the training set
    rare_threshold: float = Field(0.02, gt=0, lt=1)
    reference: str = "real"
    confidence: float = Field(0.95, gt=0, lt=1)
    min_test_patients: int = Field(10, ge=0)  # no interval or verdict for a class with fewer test patients
    bootstrap_draws: int = Field(2000, ge=100, le=100_000)
    bootstrap_seed: int = Field(0, ge=0)
    adjust: Literal["holm", "bh"] = "holm"  # multiple-comparison adjustment of the verdicts
    grid_per_class: int = Field(8, ge=0, le=64)
    plots: bool = True

    @model_validator(mode="before")
    @classmethod
    def _replicated_sets(cls, raw: Any) -> Any:
        """synthetic: {NAME: [DIR1, DIR2]} or {NAME: "DIR1,DIR2"} -> the first in synthetic,
        all of them in synthetic_replicates (one set stays as it is)."""
        if not isinstance(raw, dict) or not isinstance(raw.get("synthetic"), dict):
            return raw
        syn, reps = {}, dict(raw.get("synthetic_replicates") or {})
        for name, value in raw["synthetic"].items():
            parts = value if isinstance(value, list) else str(value).split(",") if isinstance(value, str) else [value]
            if not parts:
                raise ValueError(f"synthetic {name}: no set given")
            syn[name] = parts[0]
            if len(parts) > 1:
                reps[name] = parts
        return {**raw, "synthetic": syn, "synthetic_replicates": reps}

    @field_validator("seeds", mode="before")
    @classmethod
    def _seeds(cls, v: Any) -> Any:
        if isinstance(v, int) and not isinstance(v, bool):
            if v < 1:
                raise ValueError("seeds must be a count of at least 1 or a list of seeds")
            return list(range(v))
        return v

    @field_validator("seeds")
    @classmethod
    def _unique_seeds(cls, v: list[int]) -> list[int]:
        if not v or len(set(v)) != len(v) or min(v) < 0 or max(v) >= 2**63:
            raise ValueError("seeds must be a non-empty list of seeds in [0, 2^63) without repeats")
        return v

    @field_validator("lr", "weight_decay", "logit_tau", "rare_threshold", "confidence")
    @classmethod
    def _finite(cls, v: float) -> float:
        if v != v or v in (float("inf"), float("-inf")) or abs(v) > 1e6:
            raise ValueError("must be a finite number")
        return v

    @field_validator("controlled_imbalance")
    @classmethod
    def _positive(cls, v: dict[str, int]) -> dict[str, int]:
        for k, n in v.items():
            if n < 1:
                raise ValueError(f"controlled imbalance {k}={n}: keep at least 1 image")
        return v

    def classifier(self, steps: int, evaluations: int) -> ClassifierConfig:
        """The part the classifier core trains with: every arm gets the same ``steps``."""
        keys = ("model", "weights", "epochs", "batch_size", "eval_batch_size", "lr", "weight_decay", "num_workers")
        return ClassifierConfig(
            **{k: getattr(self, k) for k in keys},
            augment=self.augment,
            steps=steps,
            eval_every=max(1, -(-steps // evaluations)),
        )

    def training_dict(self) -> dict[str, Any]:
        """The options a trained model depends on (its resume key); reporting options excluded.
        The resolved step budget is added by the plan (it depends on the arms' sizes)."""
        keys = ("model", "epochs", "batch_size", "lr", "weight_decay", "mixed_precision")
        d: dict[str, Any] = {k: getattr(self, k) for k in keys}
        d["weights"] = str(self.weights) if self.weights else None
        d["controlled_imbalance"] = dict(sorted(self.controlled_imbalance.items()))
        d["imbalance_seed"] = self.imbalance_seed
        return d


def _set_dotted(target: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    node = target
    for p in parts[:-1]:
        node = node.setdefault(p, {})
        if not isinstance(node, dict):
            raise UserError(f"--set {key}: {p} is not a group of options")
    node[parts[-1]] = value


def parse_set(items: list[str]) -> dict[str, Any]:
    """``key=value`` strings (values read as YAML) -> nested dict on dotted keys."""
    out: dict[str, Any] = {}
    for key, value in parse_sets(items).items():
        _set_dotted(out, key, value)
    return out


def build_config(
    file: Path | None = None, options: dict[str, Any] | None = None, sets: list[str] | None = None
) -> BenchmarkConfig:
    """Defaults < YAML file < explicit options (None values ignored) < ``--set`` items."""
    raw: dict[str, Any] = load_config_file(file)
    raw = deep_merge(raw, {k: v for k, v in (options or {}).items() if v is not None})
    raw = deep_merge(raw, parse_set(sets or []))
    return validated(BenchmarkConfig, raw, "option")  # type: ignore[return-value]
