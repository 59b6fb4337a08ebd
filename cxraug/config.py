"""Training configuration and its resolution: defaults < config file < flags < --set.

The resolved config is saved in every run directory (config.json) before the first step,
so a run can always be rebuilt and resumed from its own folder.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from cxraug.errors import UserError
from cxraug.fsutil import quoted, short

DEFAULT_STEPS = 2000
UNTIL_TIME_LIMIT = 10**9  # steps of a run given only a --time-limit: the budget stops it


class TrainConfig(BaseModel):
    """Options of the training loop, shared by every generator plugin."""

    model_config = ConfigDict(extra="forbid")

    steps: int | None = Field(
        None, ge=1, description=f"optimisation steps in total (default {DEFAULT_STEPS}; with time_limit: until it)"
    )
    time_limit: float | None = Field(
        None, gt=0, description="minutes of training steps (cumulative over resumes); the run then ends as at --steps"
    )
    clock: Literal["wall", "cpu"] = Field(
        "wall",
        description="what time_limit counts: wall seconds of the training steps, or this process's CPU seconds "
        "(all its threads), which other jobs on a shared CPU machine cannot shorten; a GPU's time is not CPU time",
    )
    batch_size: int = Field(64, ge=1, description="images per step and process")
    seed: int = 0
    balanced: bool = Field(False, description="class-balanced sampling of training images")
    mixed_precision: Literal["no", "fp16", "bf16"] = "no"
    log_every: int = Field(10, ge=1)
    sample_every: int = Field(500, ge=0, description="sample grid every K steps (0: only at the end)")
    checkpoint_every: int = Field(500, ge=0, description="checkpoint every K steps (0: only at the end)")
    checkpoint_minutes: float = Field(
        10,
        ge=0,
        description="also checkpoint once this many wall minutes have passed since the last one (0: by steps "
        "only), so a killed slow run (a CPU at 64 px: 7 s a step) loses minutes, not the hour 500 steps take",
    )
    keep_checkpoints: int = Field(3, ge=1)
    grid_per_class: int = Field(8, ge=1, description="images per class row in sample grids")
    fid_every: int = Field(0, ge=0, description="FID/KID on a small sample every K steps (0: never)")
    fid_n: int = Field(500, ge=10, description="images per side for training-time FID")
    fid_metrics: list[str] = Field(
        default_factory=lambda: ["fid", "kid"],
        description="metrics of training-time scoring: fid, kid, pr, dc, fidelity, fd_cxr (the last two train "
        "the reference classifier before the first step, or reuse it from the cache)",
    )
    tensorboard: bool = False

    @model_validator(mode="after")
    def _known_metrics(self) -> TrainConfig:
        from cxraug.metric_names import resolve_metrics

        try:
            self.fid_metrics = resolve_metrics(self.fid_metrics)
        except UserError as e:
            raise ValueError(str(e)) from None
        return self

    @model_validator(mode="after")
    def _default_steps(self) -> TrainConfig:
        if self.steps is None:  # saved resolved, so a run's config always names its step cap
            self.steps = DEFAULT_STEPS if self.time_limit is None else UNTIL_TIME_LIMIT
        return self


def parse_value(text: str) -> Any:
    """YAML scalar/list parsing for --set values: 2e-4, true, [32, 64], bf16."""
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    except RecursionError:
        raise UserError(
            f"--set value {short(text, 40)!r} nests too deeply; give a number, a word or a flat list"
        ) from None


def parse_sets(items: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--set {short(item, 60)!r} is not key=value (e.g. --set lr_g=1e-4)")
        out[key.strip()] = parse_value(value.strip())
    return out


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``over`` on top of ``base``; nested dicts merged key by key, anything else replaced."""
    out = dict(base)
    for k, v in over.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def load_config_file(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    import yaml

    if not path.is_file():
        raise UserError(f"config file {path} does not exist")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise UserError(
            f"config file {path} is not UTF-8 text (byte {raw[e.start]:#04x} at offset {e.start}); save it as UTF-8"
        ) from None
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        raise UserError(f"config file {path} is not valid YAML: {short(str(e).splitlines()[0], 120)}") from None
    except RecursionError:
        raise UserError(f"config file {path} nests too deeply to read; write a flat mapping of keys") from None
    if not isinstance(data, dict):
        raise UserError(f"config file {path} must be a mapping of keys to values")
    return data


def _route(key: str, value: Any, train: dict, model: dict, model_fields: set[str]) -> None:
    section, dot, name = key.partition(".")
    if dot and section in ("train", "model"):
        (train if section == "train" else model)[name] = value
    elif key in TrainConfig.model_fields:
        train[key] = value
    elif key in model_fields:
        model[key] = value
    else:
        raise UserError(
            f"unknown config key {short(key, 60)!r}; training keys: {', '.join(TrainConfig.model_fields)}; "
            f"model keys: {', '.join(sorted(model_fields))}"
        )


def validation_message(e: ValidationError, cls: type[BaseModel], what: str, label: Callable[[str], str] = repr) -> str:
    """One line naming the first bad key (as ``label`` writes it: a command can name its flag),
    and the known keys when it is unknown."""
    err = e.errors()[0]
    loc = ".".join(str(p) for p in err["loc"])
    if err["type"] == "extra_forbidden":
        return f"unknown {what} {loc!r}; known: {', '.join(cls.model_fields)}"
    msg = err["msg"].removeprefix("Value error, ")  # pydantic's prefix for validator messages
    if not loc:  # a check of the whole config: its message says what is wrong
        return f"{what}: {msg}"
    return f"{what} {label(loc)}: {msg} (got {quoted(err.get('input'), 60)})"


def validated(cls: type[BaseModel], values: dict[str, Any], what: str, label: Callable[[str], str] = repr) -> BaseModel:
    """``cls`` built from ``values``: its own ranges (pydantic), then the ones every number has
    (:func:`number_problem`); a bad value is one line naming the key (as ``label`` writes it)."""
    try:
        obj = cls(**values)
    except ValidationError as e:
        raise UserError(validation_message(e, cls, what, label)) from None
    for key, value in obj.model_dump().items():
        if problem := number_problem(key, value):
            raise UserError(f"{what} {label(key)}: {problem}")
    return obj


SEED_LIMIT = 2**63  # seeds are 63-bit: what torch's and NumPy's generators take whole
INT_LIMIT = 2**63  # any other integer: what a 64-bit tensor or index holds
FLOAT_LIMIT = 1e30  # any float: finite, and far inside float32 (3.4e38), which the nets compute in


def number_problem(key: str, value: Any) -> str | None:
    """What is wrong with a number given as option ``key`` (None: nothing), by the rules every
    numeric option and ``--set`` value follows: a seed (``seed``, ``*_seed``) in [0, 2^63), any
    other integer within 64 bits, any float finite and at most 1e30 in size. Lists and tuples
    are checked item by item."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (list, tuple)):
        return next((p for v in value if (p := number_problem(key, v))), None)
    if isinstance(value, float):
        if not math.isfinite(value):
            return f"must be a finite number (got {value})"
        if abs(value) > FLOAT_LIMIT:
            return f"must be at most {FLOAT_LIMIT:g} in size (got {value:g})"
    elif isinstance(value, int):
        if key == "seed" or key.endswith("_seed"):
            if not 0 <= value < SEED_LIMIT:
                return f"a seed must be in [0, 2^63) (got {short(value, 40)})"
        elif not -INT_LIMIT <= value < INT_LIMIT:
            return f"must be within 64 bits, below 2^63 in size (got {short(value, 40)})"
    return None


def check_option(option: str, value: Any, key: str | None = None) -> None:
    """One command-line number (``--seed``, ``--n``) checked by :func:`number_problem`'s rules."""
    if problem := number_problem(key or option.lstrip("-").replace("-", "_"), value):
        raise UserError(f"{option}: {problem}")


def explicit_values(
    model_cls: type[BaseModel],
    file_values: dict[str, Any],
    flags: dict[str, Any],
    sets: dict[str, Any],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The keys a user gave (file < flags < --set), routed to training and model keys, unvalidated."""
    train: dict[str, Any] = {}
    model: dict[str, Any] = {}
    fields = set(model_cls.model_fields)
    for section in ("train", "model"):
        sub = file_values.get(section, {})
        if not isinstance(sub, dict):
            raise UserError(f"config file section {section!r} must be a mapping")
        for k, v in sub.items():
            _route(f"{section}.{k}", v, train, model, fields)
    for k, v in file_values.items():
        if k not in ("train", "model"):
            _route(k, v, train, model, fields)
    train.update({k: v for k, v in flags.items() if v is not None})
    for k, v in sets.items():
        _route(k, v, train, model, fields)
    return train, model


def resolve(
    model_cls: type[BaseModel],
    file_values: dict[str, Any],
    flags: dict[str, Any],
    sets: dict[str, Any],
) -> tuple[TrainConfig, BaseModel]:
    """Merge defaults < file < flags < --set into validated train and model configs."""
    train, model = explicit_values(model_cls, file_values, flags, sets)
    return validated(TrainConfig, train, "training key"), validated(model_cls, model, "model key")


# What a resumed run may change: how long it goes on. Everything else would make it another run.
RESUME_CHANGES = ("steps", "time_limit")


def resume_changes(
    run_name: str,
    saved: dict[str, Any],
    model_cls: type[BaseModel],
    given_train: dict[str, Any],
    given_model: dict[str, Any],
) -> dict[str, Any]:
    """Check the keys a resuming command gives against the run's saved config (``saved``: its
    config.json). Keys that agree are fine, as a user re-running the original command with
    ``--resume`` expects; a conflict is refused naming the key and both values. Returns the
    allowed changes (steps, time_limit)."""
    changes: dict[str, Any] = {}
    for what, cls, given, values in (
        ("training key", TrainConfig, given_train, saved["train"]),
        ("model key", model_cls, given_model, saved["model"]),
    ):
        for key, value in given.items():
            new = validated(cls, {**values, key: value}, what).model_dump(mode="json")[key]
            if what == "training key" and key in RESUME_CHANGES:
                changes[key] = new
            elif new != values.get(key):
                raise UserError(
                    f"--resume {run_name}: {what} {key!r} is {quoted(values.get(key), 60)} in the run, the command "
                    f"gives {quoted(new, 60)}; drop it to continue the run, or start a new run"
                )
    return changes
