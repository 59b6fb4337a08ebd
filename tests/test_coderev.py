"""Which code made an output: the version, plus the commit of a git checkout of cxraug itself."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from cxraug import __version__
from cxraug.coderev import count_text, revision_of
from cxraug.fsutil import write_json
from cxraug.study.provenance import code_line


def _git(root: Path, *args: str) -> str:
    cmd = ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@t", *args]
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip()


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_a_checkout_gives_its_commit_and_says_when_tracked_files_differ(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "cxraug").mkdir(parents=True)
    (repo / "cxraug" / "__init__.py").write_text("x = 1\n")
    assert revision_of(repo) == __version__, "not a repository"
    _git(repo, "init", "-q")
    assert revision_of(repo) == __version__, "a repository without a commit"
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "first")
    sha = _git(repo, "rev-parse", "--short=12", "HEAD")
    assert revision_of(repo) == f"{__version__}+g{sha}"
    (repo / "notes.txt").write_text("untracked files are not the code\n")
    assert revision_of(repo) == f"{__version__}+g{sha}"
    (repo / "cxraug" / "__init__.py").write_text("x = 2\n")
    assert revision_of(repo) == f"{__version__}+g{sha}.dirty"
    # a package folder inside someone else's repository (a venv in a project) is not a checkout of it
    assert revision_of(repo / "cxraug") == __version__


def test_the_count_names_every_version_and_the_unrecorded() -> None:
    assert count_text({"0.1.0+ga": 3}, 0, "cells") == "every one of the 3 cells was made by cxraug 0.1.0+ga"
    assert count_text({"0.1.0+ga": 2, "0.1.0+gb": 5}, 1, "cells") == (
        "the 8 cells came from more than one version of the code: 0.1.0+gb (5), 0.1.0+ga (2), not recorded (1)"
    )
    assert count_text({}, 4, "cells") == "the code that made the 4 cells was not recorded"


def test_the_study_page_counts_the_code_of_its_finished_cells(tmp_path: Path) -> None:
    cells = {"n-0010/data": ("done", "0.1.0+ga"), "n-0010/gen-cgan-s0": ("done", "0.1.0+gb"),
             "n-0025/data": ("done", None), "n-0025/gen-cgan-s0": ("started", "0.1.0+gc")}  # fmt: skip
    for name, (status, code) in cells.items():
        write_json(tmp_path / name / "cell.json", {"key": {}, "status": status, **({"code": code} if code else {})})
    line = code_line(tmp_path)
    assert line == (
        "The 3 finished cells came from more than one version of the code: "
        "0.1.0+ga (1), 0.1.0+gb (1), not recorded (1)."
    )
