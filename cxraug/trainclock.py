"""A run's clock: the seconds its sessions spent in training steps and outside them, carried
through checkpoints and resumes (cost and ``--time-limit`` are right for resumed runs)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cxraug import runs
from cxraug.fsutil import read_jsonl


@dataclass
class Clock:
    """Seconds in training steps (batch + step) and outside them (grids, checkpoints, exports,
    FID), cumulative over resumes: stored in every checkpoint, so cost and ``--time-limit``
    are right for resumed runs. Only training-step seconds count towards the time limit."""

    train_s: float = 0.0
    other_s: float = 0.0
    images: int = 0

    def state(self) -> dict[str, float]:
        return {"train_s": self.train_s, "other_s": self.other_s, "images": self.images}

    @classmethod
    def from_state(cls, s: dict[str, Any] | None) -> Clock:
        s = s or {}
        return cls(float(s.get("train_s", 0.0)), float(s.get("other_s", 0.0)), int(s.get("images", 0)))


def resumed_clock(run: Path, step: int, clock: Clock) -> Clock:
    """The checkpoint's clock was stored before its own save and the final export; a run that
    stopped there wrote the full count in its stop record, so a resume from that step counts
    the work the earlier session did after the checkpoint too (cost never goes back)."""
    stops = [r for r in read_jsonl(run / runs.METRICS) if r.get("kind") == "stop" and r.get("step") == step]
    if stops:
        clock.other_s = max(clock.other_s, float(stops[-1].get("other_s") or 0.0))
    return clock
