"""Options of ``cxraug study``: one validated object, built from defaults < YAML file <
command-line options < ``--set`` (benchmark keys) and ``--set-gen PLUGIN:key=value``."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from cxraug.config import deep_merge, load_config_file, parse_value, validated
from cxraug.errors import UserError

# The keys the command line gives as a flag of the same name (the others come from --config only).
FLAG_KEYS = ("data", "out", "rare", "sizes", "generators", "gen_seeds", "seeds", "time_limit", "gen_steps", "clock",
             "ratios", "compare_n", "max_hours", "force")  # fmt: skip


def key_label(key: str) -> str:
    """How an error names a key: its flag and its YAML key, or the YAML key alone."""
    top = key.split(".")[0]
    return f"--{top.replace('_', '-')} ({key!r} in --config)" if top in FLAG_KEYS else repr(key)


# Ratios the study can size a synthetic set for (the benchmark's `all` depends on the set itself).
RATIO_HELP = "fill, xK (e.g. x2) or +N (e.g. +100)"


class StudyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    data: Path  # a prepared dataset (train, val and test)
    out: Path | None = None  # the study folder (run_study's out= wins)
    rare: str  # the class made rare: its training images cut to each size
    sizes: list[int]  # rare-class training images kept (by patient), one cell row per size
    generators: list[str] = Field(default_factory=lambda: ["cgan", "diffusion"])
    gen_seeds: list[int] = Field(default_factory=lambda: [0])  # generator replicates (training seeds)
    seeds: list[int] = Field(default_factory=lambda: [0, 1, 2])  # classifier seeds of every benchmark
    time_limit: float | None = Field(None, gt=0)  # minutes of training steps per generator run
    # or: optimiser steps per generator run (reproducible); one number, or one per plugin
    gen_steps: int | dict[str, int] | None = None
    clock: Literal["wall", "cpu"] = "wall"  # what --time-limit counts (cpu: this process's CPU seconds)
    ratios: list[str] = Field(default_factory=lambda: ["fill"])  # several: chosen on validation
    gen_sets: dict[str, dict[str, Any]] = Field(default_factory=dict)  # plugin -> train-gen --set
    bench_sets: dict[str, Any] = Field(default_factory=dict)  # benchmark --set (arms, epochs, model, ...)
    sample_sets: dict[str, dict[str, Any]] = Field(default_factory=dict)  # plugin -> synth/compare --set
    compare_n: int = Field(200, ge=2)  # synthetic images per generator in compare
    compare_bootstrap: int = Field(1000, ge=0)
    compare_min_images: int = Field(20, ge=2)
    compare_speed_images: int = Field(128, ge=1)
    compare_metrics: list[str] | None = None  # None: compare's default metrics
    compare_memorization: bool = True
    imbalance_seed: int = 0  # which patients each reduction keeps
    max_hours: float = Field(48.0, gt=0)  # refuse a grid estimated to take longer (unless force)
    force: bool = False
    grid_columns: int = Field(8, ge=1, le=32)  # sample images per generator and size on the page

    @field_validator("seeds", "gen_seeds", mode="before")
    @classmethod
    def _count_or_list(cls, v: Any) -> Any:
        if isinstance(v, int) and not isinstance(v, bool):
            if v < 1:
                raise ValueError("give a count of at least 1 or a list of seeds")
            return list(range(v))
        return v

    @field_validator("seeds", "gen_seeds")
    @classmethod
    def _unique(cls, v: list[int]) -> list[int]:
        if not v or len(set(v)) != len(v) or min(v) < 0:
            raise ValueError("a non-empty list of seeds (0 or more) without repeats")
        return v

    @field_validator("sizes")
    @classmethod
    def _sizes(cls, v: list[int]) -> list[int]:
        if not v:
            raise ValueError("give at least one size, e.g. 10,25,50")
        dup = sorted({n for n in v if v.count(n) > 1})
        if dup:
            raise ValueError(f"{dup[0]} is given twice; each size is one row of the curve")
        if min(v) < 1:
            raise ValueError("every size must keep at least 1 image")
        return sorted(v)

    @field_validator("generators")
    @classmethod
    def _generators(cls, v: list[str]) -> list[str]:
        if not v or len(set(v)) != len(v):
            raise ValueError("a non-empty list of plugins without repeats")
        return v

    @field_validator("ratios")
    @classmethod
    def _ratios(cls, v: list[str]) -> list[str]:
        from cxraug.benchmark.arms import parse_ratio

        if not v or len(set(v)) != len(v):
            raise ValueError("a non-empty list of ratios without repeats")
        for r in v:
            if r == "all" or parse_ratio(r).text == "all":
                raise ValueError(f"ratio 'all' means 'the set as given'; a study sizes its sets: use {RATIO_HELP}")
        return [parse_ratio(r).text for r in v]

    @model_validator(mode="after")
    def _budget(self) -> StudyConfig:
        if (self.time_limit is None) == (self.gen_steps is None):
            raise ValueError("give the generators' budget once: --gen-steps N (reproducible) or --time-limit MINUTES")
        if self.gen_steps is not None:  # every generator's steps, positive: a cell must not fail on it later
            steps = (
                self.gen_steps if isinstance(self.gen_steps, dict) else dict.fromkeys(self.generators, self.gen_steps)
            )
            for plugin in steps:
                if plugin not in self.generators:
                    raise ValueError(f"--gen-steps {plugin}=...: {plugin} is not among --generators")
            for plugin in self.generators:
                if plugin not in steps:
                    raise ValueError(f"--gen-steps gives no steps for {plugin}: e.g. --gen-steps {plugin}=1000,...")
                if steps[plugin] < 1:
                    raise ValueError(f"--gen-steps {plugin}={steps[plugin]}: give at least 1 step")
        for key in ("controlled_imbalance", "synthetic", "seeds", "ratios", "rare_classes", "controls"):
            if key in self.bench_sets:
                raise ValueError(f"--set {key}: the study sets it for every benchmark; use the study's own option")
        for plugin, sets in self.gen_sets.items():
            for key in ("seed", "steps", "time_limit", "clock"):
                if key in sets:
                    raise ValueError(
                        f"--set-gen {plugin}:{key}: the study sets it (--gen-seeds, --gen-steps, --time-limit, --clock)"
                    )
        return self

    def steps_of(self, plugin: str) -> int | None:
        if isinstance(self.gen_steps, dict):
            return self.gen_steps.get(plugin)
        return self.gen_steps

    def budget_text(self, plugin: str | None = None) -> str:
        if self.gen_steps is not None:
            if plugin is not None:
                return f"{self.steps_of(plugin):,} steps"
            if isinstance(self.gen_steps, dict):
                return ", ".join(f"{g} {n:,} steps" for g, n in self.gen_steps.items())
            return f"{self.gen_steps:,} steps"
        return f"{self.time_limit:g} {'CPU-' if self.clock == 'cpu' else ''}min"


def parse_plugin_sets(items: list[str] | None, option: str) -> dict[str, dict[str, Any]]:
    """``PLUGIN:key=value`` items -> {plugin: {key: value}} (values read as YAML)."""
    out: dict[str, dict[str, Any]] = {}
    for item in items or []:
        plugin, colon, rest = item.partition(":")
        key, eq, value = rest.partition("=")
        if not colon or not eq or not plugin.strip() or not key.strip():
            raise UserError(f"{option} {item!r} is not PLUGIN:KEY=VALUE; e.g. {option} cgan:batch_size=32")
        out.setdefault(plugin.strip(), {})[key.strip()] = parse_value(value)
    return out


def parse_key_values(items: list[str] | None, option: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items or []:
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise UserError(f"{option} {item!r} is not KEY=VALUE; e.g. {option} epochs=3")
        out[key.strip()] = parse_value(value)
    return out


def build_config(file: Path | None = None, options: dict[str, Any] | None = None) -> StudyConfig:
    """Defaults < YAML file < explicit options (None values ignored; dicts merged)."""
    raw: dict[str, Any] = load_config_file(file)
    raw = deep_merge(raw, {k: v for k, v in (options or {}).items() if v is not None and v != {}})
    for key in ("data", "rare", "sizes"):
        if key not in raw:
            flag = "--" + key
            raise UserError(f"{flag} is needed (or `{key}:` in --config FILE.yaml)")
    return validated(StudyConfig, raw, "option", key_label)  # type: ignore[return-value]


def key_dict(cfg: StudyConfig) -> dict[str, Any]:
    """The options as JSON (the study's record)."""
    return cfg.model_dump(mode="json")
