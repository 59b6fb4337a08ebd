"""Replicated generator runs: the same method trained again with another seed.

A replicate set stands for a *method* (a plugin, its settings, the data and the training
budget), not a checkpoint: ``compare`` and ``benchmark`` resample the replicates so that
their intervals include the generator's own training randomness. Replicates must differ in
their training seed only; anything else (the plugin, a model setting, the data, the image
size, the training budget or batch) makes them different methods, refused in one line naming
what differs.

Also the ``NAME=RUN1,RUN2`` syntax the commands share (``parse_arm``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cxraug.errors import UserError
from cxraug.fsutil import short

# The training settings that make a method (the seed and the bookkeeping ones, such as
# log_every or checkpoint_every, do not).
TRAINING_KEYS = ("steps", "time_limit", "clock", "batch_size", "balanced", "mixed_precision")


def identity(run: Path) -> dict[str, Any]:
    """What must be equal between replicates, read from the run's config.json."""
    from cxraug.runs import read_run_config

    cfg = read_run_config(Path(run))
    data, train = cfg["data"], cfg["train"]
    out: dict[str, Any] = {
        "plugin": cfg["plugin"],
        "data": data.get("fingerprint"),
        "size": (data.get("identity") or {}).get("size"),
    }
    out |= {f"setting {k}": v for k, v in sorted(cfg["model"].items())}
    out |= {f"training {k}": train.get(k) for k in TRAINING_KEYS}
    return out


def seed_of(run: Path) -> int | None:
    from cxraug.runs import read_run_config

    return read_run_config(Path(run))["train"].get("seed")


def check_replicates(arm: str, runs: list[Path]) -> None:
    """Refuse replicates that are not the same method trained with other seeds."""
    if len(runs) < 2:
        return
    first = identity(runs[0])
    for run in runs[1:]:
        other = identity(run)
        differs = [k for k in dict.fromkeys([*first, *other]) if first.get(k) != other.get(k)]
        if differs:
            what = "; ".join(f"{k}: {_show(first.get(k))} vs {_show(other.get(k))}" for k in differs[:3])
            more = f" (and {len(differs) - 3} more)" if len(differs) > 3 else ""
            raise UserError(
                f"{arm}: replicates must be the same plugin, settings, data and size trained with other seeds; "
                f"{Path(run).name} differs from {Path(runs[0]).name} in {what}{more}"
            )


def _show(v: Any) -> str:
    return v[:12] if isinstance(v, str) and len(v) == 64 else short(repr(v), 40)  # fingerprints: the start


def parse_arm(text: str) -> tuple[str | None, list[str]]:
    """``NAME=A,B,C`` -> (NAME, [A, B, C]); ``A,B`` -> (None, [A, B]); ``A`` -> (None, [A]).
    A text that names an existing path is that path, whatever it holds."""
    if Path(text).exists():
        return None, [text]
    name, sep, rest = text.partition("=")
    if sep and "/" not in name and "," not in name:
        parts = rest.split(",")
    else:
        name, parts = None, text.split(",")
    if any(not p for p in parts) or name == "":
        raise UserError(f"cannot read {short(text, 80)!r}: expected RUN, RUN1,RUN2,... or NAME=RUN1,RUN2,...")
    return name, parts
