"""Which code made an output: cxraug's version and, when it runs from a git checkout of its
own repository, the commit and whether tracked files differ from it (``0.1.0+g94f641d0a1b2``,
``...+dirty``). A study's cells record it, so a page whose cells came from several commits
says so instead of standing for one."""

from __future__ import annotations

import subprocess
from pathlib import Path

from cxraug import __version__

PACKAGE_ROOT = Path(__file__).resolve().parent.parent  # the folder holding cxraug/


def _git(root: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):  # no git, or it hung
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def revision_of(root: Path = PACKAGE_ROOT) -> str:
    """The version, plus the commit when ``root`` is the top of a git checkout (a package
    installed inside some other repository, e.g. a venv in a user's project, is not)."""
    top = _git(root, "rev-parse", "--show-toplevel")
    if top is None or Path(top).resolve() != Path(root).resolve():
        return __version__
    sha = _git(root, "rev-parse", "--short=12", "HEAD")
    if not sha:  # a repository without a commit yet
        return __version__
    changed = _git(root, "status", "--porcelain", "--untracked-files=no")
    return f"{__version__}+g{sha}" + (".dirty" if changed else "")


def count_text(revisions: dict[str, int], unrecorded: int = 0, what: str = "cells") -> str:
    """``{"0.1.0+gabc": 20, "0.1.0+gdef": 55}`` as one sentence, the most common first;
    ``unrecorded``: outputs made before their code was recorded."""
    order = sorted(revisions.items(), key=lambda kv: (-kv[1], kv[0]))
    total = sum(revisions.values()) + unrecorded
    if not order:
        return f"the code that made the {total} {what} was not recorded"
    if len(order) == 1 and not unrecorded:
        return f"every one of the {total} {what} was made by cxraug {order[0][0]}"
    parts = [f"{rev} ({n})" for rev, n in order] + ([f"not recorded ({unrecorded})"] if unrecorded else [])
    return f"the {total} {what} came from more than one version of the code: {', '.join(parts)}"
