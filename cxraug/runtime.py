"""How a cxraug process sets up CPU work, in one place for the command line and the Python API
(``cxraug.api``): idle OpenMP threads sleep, glibc's malloc thresholds are fixed, and torch
uses every core (or ``CXRAUG_THREADS``). Without this a script ran 5x slower than the CLI."""

from __future__ import annotations

import os

from cxraug.errors import UserError
from cxraug.fsutil import short
from cxraug.malloc import tune_malloc

THREADS = "CXRAUG_THREADS"


def configure_process() -> None:
    """Before torch loads: idle OpenMP threads sleep instead of spinning (on a machine shared
    with other jobs, spinning made 2-thread torch up to ~40x slower here), and glibc keeps
    activation memory in the heap (cxraug/malloc.py). Each respects a setting of the user's own;
    calling it again is harmless (the OpenMP setting only counts before torch's first import)."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    tune_malloc()


def thread_count(environ: dict[str, str] | None = None) -> int:
    """``CXRAUG_THREADS``, else every core shared among the processes a launcher started on
    this machine (LOCAL_WORLD_SIZE); a value that is not a thread count is a user error."""
    env = os.environ if environ is None else environ
    text = env.get(THREADS)
    if text is None:
        return max(1, (os.cpu_count() or 1) // max(1, int(env.get("LOCAL_WORLD_SIZE", "1"))))
    if text.strip().isascii() and text.strip().isdigit() and 1 <= int(text) <= 4096:
        return int(text)
    # isdigit alone takes '²' and other digits int() refuses
    raise UserError(f"{THREADS}={short(text, 20)!r} is not a number of threads; set it to 1 to 4096, or unset it")


def configure_threads() -> None:
    """Use every core for intra-op CPU work (torch defaults to physical cores, sometimes 1)."""
    import torch

    torch.set_num_threads(thread_count())


def configure() -> None:
    """Everything the CLI sets before a command's work: the process settings, then threads."""
    configure_process()
    configure_threads()
