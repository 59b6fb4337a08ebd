"""How the benchmark's arm x seed runs use the processes of ``accelerate launch`` / ``torchrun``.

``runs``: every process takes whole runs, the pending runs in their fixed order dealt out by
rank (``pending[rank::world]``), and trains each alone on its own device. A ResNet-18 at 32 to
128 px is far too small for DDP to pay; independent runs keep every device busy.
``ddp``: every run is trained by all processes together (DDP through Accelerate), one after
another, as for a model too big for one device.

Accelerate gives the ranks, the device and the barrier; the run folders are the record of what
is done. A run's seed and data order come from its seed alone, so under ``runs`` it is the
same model whichever process trained it, and a one-process run equals it bit for bit (at the
same number of threads per run).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from cxraug.errors import UserError

Spread = Literal["auto", "runs", "ddp"]
SPREADS: tuple[str, ...] = ("auto", "runs", "ddp")


def check_spread(value: str) -> Spread:
    if value not in SPREADS:
        raise UserError(
            f"--spread {value!r}: choose runs (each process trains whole runs), ddp (every run on all "
            "processes) or auto (runs unless there are fewer runs than processes)"
        )
    return value  # type: ignore[return-value]


def resolve_spread(spread: Spread, n_runs: int, n_processes: int) -> Literal["runs", "ddp"]:
    """``auto``: ``runs`` unless some processes would get no run at all. Decided on all the
    benchmark's runs (not only those left to train) so a resumed benchmark decides alike."""
    if spread != "auto":
        return spread
    return "runs" if n_processes == 1 or n_runs >= n_processes else "ddp"


@dataclass(frozen=True)
class Placement:
    """Where this process stands: how runs are spread, how many processes train one model (its
    resume key), this process's rank and the number launched."""

    mode: Literal["runs", "ddp"]
    per_model: int
    rank: int
    world: int


def share(pending: list, rank: int, world: int) -> list:
    """This process's runs: the pending runs in their fixed order, dealt out by rank."""
    return pending[rank::world]
