"""One writer per output: an advisory lock beside the folder a command writes.

The lock is ``flock`` on ``PARENT/.NAME.lock`` (beside the output, since outputs are built in
a staging folder and renamed, or removed by --overwrite). The kernel drops it when the holder
exits in any way, SIGKILL included, so a dead process never leaves it stuck; the file itself
may stay and only says which process last held it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from cxraug.errors import UserError


def lock_path(target: Path) -> Path:
    # resolve(), not absolute(): one output reached through a symlink has one lock.
    target = Path(target).resolve()
    return target.parent / f".{target.name}.lock"


class Busy(UserError):
    """Another live process holds the lock of this output."""


@contextlib.contextmanager
def output_lock(target: Path, what: str = "output", wait: bool = False) -> Iterator[Path]:
    """Hold the lock of ``target`` for the block; a second holder gets a one-line :class:`Busy`,
    or, with ``wait``, waits for the first to finish (a cache entry that another process is
    building is then read instead of built twice)."""
    import fcntl

    path = lock_path(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            raise Busy(
                f"another cxraug process (pid {holder}) is writing the {what} {target}; "
                "wait for it to finish, or stop it, and run again"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield path
    finally:
        os.close(fd)  # closing releases the flock
