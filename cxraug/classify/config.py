"""What one classifier training depends on: an explicit object, built by each user (the
benchmark from its options, the reference classifier from its settings)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


class AugmentConfig(BaseModel):
    """Classical augmentation for chest X-rays (arm ``classic``): small geometric and
    intensity changes; never a left-right flip (the heart is on the left)."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    degrees: float = Field(7.0, ge=0, le=45)
    translate: float = Field(0.06, ge=0, le=0.5)  # fraction of the image size
    scale: float = Field(0.10, ge=0, le=0.5)  # zoom in [1 - scale, 1 + scale]
    brightness: float = Field(0.10, ge=0, le=1)  # added, in units of the [-1, 1] range / 2
    contrast: float = Field(0.10, ge=0, le=1)  # multiplied around the image mean, 1 +- contrast


@dataclass(frozen=True)
class ClassifierConfig:
    """The network and its optimisation (validated by the caller's own config)."""

    model: str = "resnet18"
    weights: Path | None = None  # local file (safetensors or torch state dict); never downloaded
    epochs: int = 8
    # Optimiser steps and validation checks: None = epochs passes over this training set, checked
    # after each. The benchmark sets both, so every arm trains for the same number of steps.
    steps: int | None = None
    eval_every: int | None = None
    batch_size: int = 64
    eval_batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 1e-4
    num_workers: int = 0
    augment: AugmentConfig = field(default_factory=AugmentConfig)
