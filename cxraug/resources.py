"""What an output will need, checked before the work: an output that cannot fit on the disk,
or a plan that cannot fit in memory, is refused in one line instead of filling the disk or
meeting the kernel's out-of-memory killer (which, on a shared machine, may end other jobs)."""

from __future__ import annotations

import shutil
from pathlib import Path

from cxraug.errors import UserError

# Per-item costs of cxraug's own bookkeeping, measured generously (Python objects, CSV rows).
RECORD_BYTES = 2048  # one source image's record while planning prepare, with its manifest row
SYNTH_ROW_BYTES = 2048  # one synthetic image's manifest row and bookkeeping while synth runs
PNG_OVERHEAD = 200  # an 8-bit PNG is at most its raw pixels plus this (header, filter bytes, zlib)


def free_disk(path: Path) -> int:
    """Free bytes on the filesystem that would hold ``path`` (its nearest existing folder)."""
    p = Path(path).absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    return shutil.disk_usage(p if p.is_dir() else p.parent).free


def available_memory() -> int | None:
    """Memory the kernel can give without swapping (MemAvailable), or None where unknown."""
    try:
        for row in Path("/proc/meminfo").read_text().splitlines():
            if row.startswith("MemAvailable:"):
                return int(row.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _gib(n: float) -> str:
    return f"{n / 2**30:,.1f} GiB"


def require(what: str, out: Path, disk: int = 0, memory: int = 0) -> None:
    """Refuse ``what`` when it needs more disk at ``out`` or more memory than there is."""
    free = free_disk(out)
    if disk > free:
        raise UserError(
            f"{what} needs about {_gib(disk)} on disk at {out}, and {_gib(free)} is free; "
            "ask for fewer images, or choose another --out"
        )
    require_memory(what, memory)


def require_memory(what: str, memory: int, remedy: str = "ask for fewer images") -> None:
    """Refuse ``what`` when it needs more memory than the kernel can give without swapping."""
    avail = available_memory()
    if avail is not None and memory > avail:
        raise UserError(f"{what} needs about {_gib(memory)} of memory, and {_gib(avail)} is available; {remedy}")
