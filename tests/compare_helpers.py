"""Helpers for the compare tests (no tests here): an extractor that records what it extracted,
and run folders altered on purpose."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
from test_score_support import PixelProjection


class RecordingProjection(PixelProjection):
    """PixelProjection that keeps the description of every extraction ("real val Hernia (3)")."""

    def __init__(self, size: int, seed: int = 0) -> None:
        super().__init__(size, seed)
        self.log: list[str] = []

    def extract(self, images: np.ndarray, batch_size: int = 64, reporter: Any = None, what: str = "") -> np.ndarray:
        self.log.append(what)
        return super().extract(images, batch_size, reporter, what)


def copy_run(run: Path, dest: Path) -> Path:
    shutil.copytree(run, dest)
    return dest


def retarget_data(run: Path, fingerprint: str, name: str = "other") -> None:
    """Make a run say it was trained on another prepared dataset (export and config)."""
    for f in (run / "export" / "config.json", run / "config.json"):
        cfg = json.loads(f.read_text())
        cfg["data"] = {**cfg["data"], "fingerprint": fingerprint, "name": name}
        f.write_text(json.dumps(cfg))
