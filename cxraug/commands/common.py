"""What every command shares: consoles, the user-error boundary, thread setup."""

from __future__ import annotations

import errno
import functools
import os
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console

from cxraug.errors import UserError

F = TypeVar("F", bound=Callable[..., Any])
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)  # the user can fix these (free space); any other OSError is ours


def out_console() -> Console:
    return Console(highlight=False)


def err_console() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


def fail(message: str) -> typer.Exit:
    """Print one error line and return the exit to raise (code 2: the user can fix it)."""
    import sys

    sys.stdout.flush()  # an unfinished progress line must not swallow the error line
    err_console().print(f"[bold red]error:[/] {message}", markup=True, highlight=False)
    return typer.Exit(2)


def user_errors(fn: F) -> F:
    """Turn a UserError raised anywhere below a command into one line and exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except UserError as e:
            raise fail(str(e).replace("[", r"\[")) from None
        except OSError as e:
            if e.errno not in DISK_FULL:
                raise
            where = f" writing {e.filename}" if e.filename else ""
            raise fail(
                f"no space left on the device{where}; free some space and run the same command again "
                "(outputs are written whole or not at all, so nothing half-written was kept)"
            ) from None

    return wrapper  # type: ignore[return-value]


def configure_threads() -> None:
    """Use every core for intra-op CPU work (torch defaults to physical cores, sometimes 1)."""
    import torch

    n = int(os.environ.get("CXRAUG_THREADS", os.cpu_count() or 1))
    torch.set_num_threads(max(1, n))


def parse_list(value: str | None) -> list[str] | None:
    if value is None:
        return None
    items = [v.strip() for v in value.split(",") if v.strip()]
    return items or None
