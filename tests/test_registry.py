"""Plugin discovery through entry points, as a third-party package would be found."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cxraug import registry
from cxraug.cli import app
from cxraug.errors import UserError

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "docs" / "examples" / "cxraug_classmean.py"


def install_example(site: Path) -> None:
    """What `pip install` of a plugin package leaves behind: the module and a dist-info
    with an entry_points.txt naming the cxraug.generators group."""
    (site / "cxraug_classmean.py").write_text(EXAMPLE.read_text())
    info = site / "cxraug_classmean-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: cxraug-classmean\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[cxraug.generators]\nclassmean = cxraug_classmean:ClassMean\n")


@pytest.fixture
def third_party(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    site = tmp_path / "site"
    site.mkdir()
    install_example(site)
    monkeypatch.syspath_prepend(str(site))
    yield site
    sys.modules.pop("cxraug_classmean", None)


def test_third_party_plugin_is_discovered_and_listed(third_party: Path) -> None:
    assert "classmean" in registry.available()
    assert registry.get("classmean").name == "classmean"
    out = CliRunner().invoke(app, ["plugins"], env={"COLUMNS": "200"}).output
    assert "classmean" in out and "cgan" in out and "diffusion" in out


def test_third_party_plugin_trains_and_synthesizes(third_party: Path, tmp_path: Path, phantom32: Path) -> None:
    env_path = f"{third_party}"
    cmd = [sys.executable, "-m", "cxraug", "train-gen", "--plugin", "classmean", "--data", str(phantom32),
           "--out", str(tmp_path / "runs"), "--steps", "20", "--batch-size", "16", "--set", "sample_every=0"]  # fmt: skip
    env = {"PYTHONPATH": env_path, "PATH": "/usr/bin:/bin", "CXRAUG_THREADS": "1"}
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    run = next((tmp_path / "runs").iterdir())
    r = subprocess.run([sys.executable, "-m", "cxraug", "synth", "--run", str(run), "--class", "Mass", "-n", "4"],
                       capture_output=True, text=True, env=env)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert len(list((run / "synth").rglob("*.png"))) == 4


def test_broken_plugin_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = tmp_path / "site"
    info = site / "broken-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: broken\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[cxraug.generators]\nbroken = no_such_module:Thing\n")
    monkeypatch.syspath_prepend(str(site))
    with pytest.raises(UserError, match=r"plugin 'broken' .* failed to import"):
        registry.get("broken")
