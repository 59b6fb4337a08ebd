"""What every ``cxraug.api`` function shares: paths and ``--set`` items taken alike from Python
and the CLI, options as a config or keywords, the inputs' locks held for the whole call, where
warnings and a plan's lines go, and how ``plan_only`` stops the work."""

from __future__ import annotations

import dataclasses
import functools
import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from cxraug.errors import UserError
from cxraug.lock import reading_scope

PathLike = str | Path
Warn = Callable[[str], None]
Say = Callable[[str], None]  # takes a plan's lines, one at a time (the CLI prints them)
C = TypeVar("C")
P = ParamSpec("P")
R = TypeVar("R")


class CxraugWarning(UserWarning):
    """Something a user would want to know before relying on a result (never an error)."""


FORCE_HINT = "pass --force to train anyway"  # from Python: force=True


class PlanOnly(Exception):
    """Raised by a plan hook under ``plan_only``, once the plan is built: the work stops there."""


def say_lines(say: Say | None, lines: list[str]) -> None:
    for line in lines if say is not None else []:
        say(line)


def default_warn(message: str) -> None:
    warnings.warn(message, CxraugWarning, stacklevel=4)  # the caller of the api function (past _scoped)


def with_options(cls: type[C], config: C | None, kwargs: dict[str, Any]) -> C:
    """``config`` with ``kwargs`` replaced, or ``cls(**kwargs)``; an unknown key is a user error."""
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(kwargs) - names)
    if unknown:
        raise UserError(f"{cls.__name__} has no option {', '.join(unknown)}; known: {', '.join(sorted(names))}")
    if config is None:
        return cls(**kwargs)
    return dataclasses.replace(config, **kwargs) if kwargs else config  # type: ignore[type-var]


def as_path(p: PathLike | None, what: str = "a path") -> Path | None:
    """``p`` as a Path; anything but a str or path-like is one line, not pathlib's TypeError."""
    if p is None:
        return None
    if not isinstance(p, (str, os.PathLike)):
        raise UserError(f"{what} must be a str or Path (got {type(p).__name__} {p!r:.60})")
    return Path(p)


def set_items(values: Mapping[str, Any] | Sequence[str] | None) -> list[str]:
    """``--set`` items from a mapping (Python) or ``key=value`` strings (the CLI)."""
    if values is None:
        return []
    if isinstance(values, Mapping):
        import json

        return [f"{k}={v if isinstance(v, str) else json.dumps(v)}" for k, v in values.items()]
    if isinstance(values, str) or any(not isinstance(v, str) for v in values):
        raise UserError(f"sets: give a dict {{key: value}} or a list of 'key=value' strings (got {values!r:.60})")
    return list(values)


def scoped(fn: Callable[P, R]) -> Callable[P, R]:
    """Hold the inputs' shared locks for the whole call, as a command does (cxraug/lock.py)."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with reading_scope():
            return fn(*args, **kwargs)

    return wrapper
