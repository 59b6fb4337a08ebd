"""``cxraug benchmark``'s options: each as typer declares it (its help and default as shown by
``--help``), the one typed object they travel in, and how the list-valued ones are parsed."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from cxraug.commands.common import parse_list
from cxraug.errors import UserError


def parse_pairs(items: list[str] | None, option: str, example: str) -> dict[str, str]:
    """``NAME=VALUE`` items -> dict; a malformed or repeated name is a user error."""
    out: dict[str, str] = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise UserError(f"{option} {item!r} is not NAME=VALUE; e.g. {option} {example}")
        if name.strip() in out:
            raise UserError(f"{option} names {name.strip()!r} twice")
        out[name.strip()] = value.strip()
    return out


def parse_seeds(text: str | None) -> int | list[int] | None:
    """``3`` -> three seeds 0, 1, 2; ``0,5,9`` -> those seeds."""
    if text is None:
        return None
    try:
        if "," in text:
            return [int(s) for s in text.split(",") if s.strip()]
        return int(text)
    except ValueError:
        raise UserError(f"--seeds {text!r}: give a count (e.g. 5) or a list (e.g. 0,1,2)") from None


def cli_options(opts: BenchmarkOptions) -> dict[str, Any]:
    """The options that are BenchmarkConfig keys, parsed (None: not given)."""
    counts: dict[str, int] = {}
    for name, n in parse_pairs(opts.controlled_imbalance, "--controlled-imbalance", '"No Finding=50"').items():
        if not n.isdigit() or int(n) < 1:
            raise UserError(f"--controlled-imbalance {name}={n}: N must be a whole number of images, at least 1")
        counts[name] = int(n)
    syn = dict(parse_pairs(opts.synthetic, "--synthetic", "cgan=runs/00001-cgan/synth/x"))  # DIR1,DIR2: replicates
    return {
        "synthetic": syn or None,
        "arms": parse_list(opts.arms),
        "seeds": parse_seeds(opts.seeds),
        "ratios": parse_list(opts.ratios),
        "controlled_imbalance": counts or None,
        "controls": opts.controls,
    }


TRAINING_KEYS = ("model", "epochs", "batch_size", "lr", "weight_decay", "rare_threshold", "min_test_patients")


def _default(key: str) -> str:
    """A BenchmarkConfig default as the help shows it (lists comma-separated)."""
    from cxraug.benchmark.config import BenchmarkConfig

    field = BenchmarkConfig.model_fields[key]
    value = field.get_default(call_default_factory=True)
    return ",".join(map(str, value)) if isinstance(value, list) else str(value)


def epilog() -> str:
    """The training and reporting defaults that --set changes, computed from BenchmarkConfig."""
    keys = ", ".join(f"{k}={_default(k)}" for k in TRAINING_KEYS)
    return f"Defaults of --set (every key: docs/benchmark.md): {keys}."


# The command's options, one alias each: the command's signature names them, its body stays short.
DataOption = Annotated[
    Optional[Path],
    typer.Option(
        help="Prepared dataset (from `cxraug prepare`). Required, except with --report-only (the stored one)."
    ),
]
SyntheticOption = Annotated[
    Optional[list[str]],
    typer.Option(
        metavar="NAME=DIR[,DIR...]",
        help="A synthetic set from `cxraug synth` (repeatable); several, comma-separated: one per generator "
        "replicate (runs trained with other seeds).",
    ),
]
ArmsOption = Annotated[
    Optional[str],
    typer.Option(
        help="Comma-separated arms: real, reweight, oversample, classic, logit-adjust, NAME, NAME@RATIO, "
        "NAME+classic, NAME-only (copy and noise controls are added for every synthetic arm).",
        show_default="the five baselines, NAME and NAME+classic",
    ),
]
ControlsOption = Annotated[
    Optional[bool],
    typer.Option(
        "--controls/--no-controls",
        help="Add the copy and noise controls beside every synthetic arm.",
        show_default="--controls",
    ),
]
SeedsOption = Annotated[
    Optional[str],
    typer.Option(help="Number of seeds (e.g. 5), or a list (e.g. 0,1,2).", show_default=_default("seeds")),
]
RatiosOption = Annotated[
    Optional[str],
    typer.Option(
        "--ratio",
        help="Synthetic ratios, comma-separated: all (every image of the set), fill, xK, +N.",
        show_default=_default("ratios"),
    ),
]
OutOption = Annotated[Optional[Path], typer.Option(help="Output folder.", show_default="runs/benchmark-DATA")]
ConfigOption = Annotated[Optional[Path], typer.Option(help="YAML file of options (see docs/benchmark.md).")]
SetsOption = Annotated[
    Optional[list[str]],
    typer.Option("--set", metavar="KEY=VALUE", help="An option, e.g. epochs=20 or model=densenet121 (repeatable)."),
]
ControlledImbalanceOption = Annotated[
    Optional[list[str]],
    typer.Option(metavar="CLASS=N", help="Keep N training images of CLASS, chosen by patient (repeatable)."),
]
OverwriteOption = Annotated[bool, typer.Option("--overwrite", help="Delete earlier runs in --out and start again.")]
ExportReducedOption = Annotated[
    Optional[Path],
    typer.Option(
        help="Only write the --controlled-imbalance training set (same val/test) as a prepared "
        "dataset here, to train a generator on, and exit."
    ),
]
ReportOnlyOption = Annotated[
    Optional[Path],
    typer.Option(
        metavar="DIR",
        help="Rebuild every table, plot and verdict of a benchmark folder from its stored predictions "
        "(reporting options may change with --set; nothing is trained).",
    ),
]
SpreadOption = Annotated[
    Optional[str],
    typer.Option(
        metavar="auto|runs|ddp",
        help="Under `accelerate launch` / torchrun: runs = each process trains whole arm x seed runs "
        "on its own device; ddp = every run on all processes; auto = runs unless there are "
        "fewer runs than processes.",
        show_default="auto",
    ),
]
PlanOption = Annotated[
    bool,
    typer.Option(
        "--plan",
        help="Print the plan (rare classes, reachable verdicts, runs, estimated time) and exit; "
        "nothing is trained or written.",
    ),
]
ForceOption = Annotated[
    bool,
    typer.Option(
        "--force", help="Train even when the plan says no verdict is reachable (else: exit 2 before training)."
    ),
]


@dataclass(frozen=True, kw_only=True)
class BenchmarkOptions:
    """``cxraug benchmark``'s options as given on the command line (parsed further by the work)."""

    data: Path | None
    synthetic: list[str] | None
    arms: str | None
    controls: bool | None
    seeds: str | None
    ratios: str | None
    out: Path | None
    config: Path | None
    sets: list[str] | None
    controlled_imbalance: list[str] | None
    overwrite: bool
    export_reduced: Path | None
    report_only: Path | None
    spread: str | None
    plan: bool
    force: bool
