"""Run directories: numbered folders holding config, logs, checkpoints, samples and export.

runs/00001-cgan-cxr64/
  config.json        resolved config (plugin, train, model, data provenance)
  metrics.jsonl      one JSON object per logged step (losses, img/s) and per evaluation
  checkpoints/step-0000500.pt   full training state (tensors only; weights_only=True load)
  samples/step-0000500.png      grid: one row per class, fixed noise
  export/            weights.safetensors + config.json: what synth and score load
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

from cxraug.errors import UserError
from cxraug.fsutil import read_json

CONFIG = "config.json"
METRICS = "metrics.jsonl"
CKPT_DIR = "checkpoints"
SAMPLES_DIR = "samples"
EXPORT_DIR = "export"
_NUM = re.compile(r"^(\d{5})-")
_CKPT = re.compile(r"^step-(\d{7})\.pt$")


def next_run_dir(root: Path, plugin: str, data_name: str) -> Path:
    """Create and return ``root/NNNNN-plugin-data`` with the next free number."""
    root.mkdir(parents=True, exist_ok=True)
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", data_name)
    while True:
        used = [int(m.group(1)) for p in root.iterdir() if (m := _NUM.match(p.name))]
        run = root / f"{max(used, default=0) + 1:05d}-{plugin}-{safe}"
        try:
            run.mkdir()  # exclusive: two runs started at once get different numbers
            return run
        except FileExistsError:
            continue


def clear_unstarted_runs(root: Path) -> None:
    """Remove the numbered run folders under ``root`` that a killed train-gen made but never wrote
    a config into (``next_run_dir`` runs before the config is written); nothing else, so a
    user's own files beside them stay."""
    if not root.is_dir():
        return
    for p in root.iterdir():
        if _NUM.match(p.name) and p.is_dir() and not (p / CONFIG).exists():
            shutil.rmtree(p)


def checkpoints(run: Path) -> list[tuple[int, Path]]:
    d = run / CKPT_DIR
    if not d.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in d.iterdir() if (m := _CKPT.match(p.name))]
    return sorted(found)


def checkpoint_path(run: Path, step: int) -> Path:
    return run / CKPT_DIR / f"step-{step:07d}.pt"


def read_run_config(run: Path) -> dict[str, Any]:
    if not run.is_dir():
        raise UserError(f"run directory {run} does not exist; train one with `cxraug train-gen`")
    if not (run / CONFIG).is_file():
        raise UserError(f"{run} is not a cxraug run (no {CONFIG})")
    cfg = read_json(run / CONFIG)
    _check_shape(cfg, run / CONFIG)
    return cfg


# What resume and synth read from a run's config.json, by type: an edited file that breaks
# it is a one-line error, not a KeyError deep in the loop.
_SHAPE = {"plugin": str, "train": dict, "model": dict, "data": dict}
_DATA_SHAPE = {"path": str, "fingerprint": str}


def _check_shape(cfg: object, path: Path) -> None:
    if not isinstance(cfg, dict):
        raise UserError(f"{path} does not hold a JSON object; was it written by cxraug?")
    for part, shape in ((cfg, _SHAPE), (cfg.get("data"), _DATA_SHAPE)):
        for key, kind in shape.items():
            if not isinstance(part, dict) or not isinstance(part.get(key), kind):
                raise UserError(f"{path}: {key!r} is missing or not a {kind.__name__}; was the file edited?")


def run_inputs(run: Path) -> list[Path]:
    """What synth, score and compare read of a run: its config and export (its synth/ and
    scores/ folders hold their outputs)."""
    return [Path(run) / CONFIG, Path(run) / EXPORT_DIR]


def load_generator(run: Path | str):
    """The exported generator of a run (EMA weights) and its export config."""
    from cxraug import registry

    run = Path(run)
    read_run_config(run)
    export = run / EXPORT_DIR
    if not (export / "weights.safetensors").is_file():
        raise UserError(
            f"{run} has no export yet (no {EXPORT_DIR}/weights.safetensors); let training reach a checkpoint"
        )
    meta = read_json(export / "config.json")
    if not isinstance(meta, dict) or not isinstance(meta.get("plugin"), str):
        raise UserError(f"{export / 'config.json'} does not name its plugin; was the file edited?")
    cls = registry.get(meta["plugin"])
    return cls.from_export(export), meta
