"""What defines a generator run, saved as its config.json: the plugin, the training and model
configs and the data (with its provenance); starting a new numbered run folder, and reading a
run's spec back to resume it."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from cxraug import __version__, registry, runs
from cxraug.accel import process_state
from cxraug.config import TrainConfig
from cxraug.data.identity import describe_difference
from cxraug.data.prepared import PreparedData, fingerprint, open_prepared
from cxraug.errors import UserError
from cxraug.fsutil import write_json

TRAIN_SPLITS = ["train"]  # the generator sees the classifier's training patients only


@dataclass
class RunSpec:
    """Everything that defines a run; saved as the run's config.json."""

    plugin: str
    train: TrainConfig
    model: BaseModel  # the plugin's Config
    data_path: Path

    def to_json(self, data: PreparedData, run: Path, num_processes: int) -> dict[str, Any]:
        return {
            "cxraug_version": __version__,
            "run": run.name,
            "plugin": self.plugin,
            "train": self.train.model_dump(mode="json"),
            "model": self.model.model_dump(mode="json"),
            "data": data_provenance(data),
            "num_processes": num_processes,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }


def data_provenance(data: PreparedData) -> dict[str, Any]:
    return {
        "path": str(data.root.resolve()),
        "name": data.name,
        "fingerprint": fingerprint(data),
        "identity": data.identity,  # what the fingerprint covers: a mismatch can then be named
        "splits": TRAIN_SPLITS,
        "source": data.meta["source"],
        "real_data": data.meta.get("real_data", True),
        "n_train": int(sum(data.counts("train").values())),
        "counts_train": data.counts("train"),
    }


def check_supported_size(plugin: str, data: PreparedData) -> None:
    """The plugin's size range, checked before a run directory is made (and again at build)."""
    cls = registry.get(plugin)
    if not cls.min_size <= data.size <= cls.max_size:
        raise UserError(
            f"plugin {plugin!r} supports {cls.min_size} to {cls.max_size} px, the data is {data.size} px; "
            "prepare the data at another --size"
        )


def start_run(spec: RunSpec, runs_root: Path) -> Path:
    """Create the numbered run directory (main process) and save the resolved config.

    Under several processes the main one picks the number and tells the others.
    """
    from accelerate.utils import broadcast_object_list

    state = process_state()
    data = open_prepared(spec.data_path)
    check_supported_size(spec.plugin, data)  # every check before the folder exists
    holder = [None]
    if state.is_main_process:
        run = runs.next_run_dir(runs_root, spec.plugin, data.name)
        write_json(run / runs.CONFIG, spec.to_json(data, run, state.num_processes))
        holder = [str(run)]
    if state.num_processes > 1:
        broadcast_object_list(holder)
    return Path(holder[0])


def spec_from_run(run: Path, changes: dict[str, Any] | None = None) -> RunSpec:
    """The spec saved in ``run``, with ``changes`` (steps, time_limit) applied and saved."""
    from cxraug.config import validated

    cfg = runs.read_run_config(run)
    cls = registry.get(cfg["plugin"])
    changes = changes or {}
    train_values = {**cfg["train"], **changes}
    train_cfg = validated(TrainConfig, train_values, f"training key in {run / runs.CONFIG}")
    model_cfg = validated(cls.Config, cfg["model"], f"model key in {run / runs.CONFIG}")
    spec = RunSpec(cfg["plugin"], train_cfg, model_cfg, Path(cfg["data"]["path"]))
    data = open_prepared(spec.data_path)
    if fingerprint(data) != cfg["data"]["fingerprint"]:
        raise UserError(
            f"the prepared dataset {spec.data_path} is not the one {run.name} was trained on "
            f"({describe_difference(cfg['data'].get('identity'), data.identity)}); cannot resume: start a new run"
        )
    if any(cfg["train"].get(k) != v for k, v in changes.items()):
        cfg["train"].update(changes)
        write_json(run / runs.CONFIG, cfg)
    return spec
