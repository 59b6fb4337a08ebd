"""The shell scripts under scripts/ (the demo, the experiment scripts that published pages cite)
at least parse, and an experiment script given an unknown dataset stops before any work."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted((ROOT / "scripts").rglob("*.sh"))


def test_there_are_scripts_to_check() -> None:
    assert ROOT / "scripts" / "demo.sh" in SCRIPTS and len(SCRIPTS) > 3


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_shell_script_parses(script: Path) -> None:
    r = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_compare_seeds_refuses_an_unknown_dataset_before_any_work(tmp_path: Path) -> None:
    out = tmp_path / "out"
    r = subprocess.run(
        ["bash", str(ROOT / "scripts" / "experiments" / "compare_seeds.sh"), str(out)],
        capture_output=True, text=True, env={"PATH": "/usr/bin:/bin", "DATASET": "nih128"}, cwd=tmp_path,
    )  # fmt: skip
    assert r.returncode == 2 and "DATASET must be nih32, nih64 or pmnist32" in r.stderr, r.stderr
    assert not out.exists()


def test_bash_n_catches_a_broken_script(tmp_path: Path) -> None:
    bad = tmp_path / "bad.sh"
    bad.write_text("for x in 1 2; do\n  echo $x\n")  # no `done`
    assert subprocess.run(["bash", "-n", str(bad)], capture_output=True).returncode != 0
