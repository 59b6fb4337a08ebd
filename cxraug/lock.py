"""One writer per output: an advisory lock beside the folder a command writes.

The lock is ``flock`` on ``PARENT/.NAME.lock`` (beside the output, since outputs are built in
a staging folder and renamed, or removed by --overwrite). The kernel drops it when the holder
exits in any way, SIGKILL included, so a dead process never leaves it stuck; the file itself
may stay and only says which process last held it.

Readers take the same lock shared (:func:`hold_read_lock`, from ``open_prepared``), held until
the command ends: ``prepare --overwrite`` of a dataset that another command is reading is
refused in one line instead of replacing it under that reader, and a reader never opens a
dataset while it is being written.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from cxraug.errors import UserError

INSIDE_LOCK = ".cxraug.lock"


def lock_path(target: Path) -> Path:
    """``PARENT/.NAME.lock``; inside the target (``TARGET/.cxraug.lock``) where the parent is
    read-only and the target a writable folder (a mount point), so such an --out still works."""
    from cxraug.fsutil import in_place

    # resolve(), not absolute(): one output reached through a symlink has one lock.
    target = Path(target).resolve()
    if in_place(target):
        return target / INSIDE_LOCK
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
            if _only_readers(fd):
                raise Busy(
                    f"another cxraug process is reading the {what} {target}; replacing it now would change "
                    "its input under it: wait for that command to finish, or stop it, and run again"
                ) from None
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


def _only_readers(fd: int) -> bool:
    """Whether the lock that refused an exclusive hold is held shared only (readers, no writer)."""
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    fcntl.flock(fd, fcntl.LOCK_UN)
    return True


_READ_SCOPES: list[contextlib.ExitStack] = []


@contextlib.contextmanager
def reading_scope() -> Iterator[None]:
    """The shared locks :func:`hold_read_lock` takes inside the block are held until it ends (each
    command runs in one: ``cxraug.commands.common.user_errors``)."""
    with contextlib.ExitStack() as stack:
        _READ_SCOPES.append(stack)
        try:
            yield
        finally:
            _READ_SCOPES.pop()


def hold_read_lock(target: Path, what: str) -> None:
    """Hold the lock of ``target`` shared until the running command ends (no lock outside a
    command: a library caller manages its own files). A writer holding it is one line
    (:class:`Busy`); a folder whose lock cannot be created (read-only) is read unlocked."""
    import fcntl

    if not _READ_SCOPES:
        return
    path = lock_path(target)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError:
        try:
            fd = os.open(path, os.O_RDONLY)  # flock works on a read-only descriptor too
        except OSError:
            return  # nowhere to put a lock: nobody can take it to write here either
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise Busy(
            f"another cxraug process (pid {holder}) is writing the {what} {target}; "
            "wait for it to finish, then run again"
        ) from None
    _READ_SCOPES[-1].callback(os.close, fd)
