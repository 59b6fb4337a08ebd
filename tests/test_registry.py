"""Plugin discovery through entry points, as a third-party package would be found."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cxraug import registry
from cxraug.cli import app
from cxraug.errors import UserError
from cxraug.testing import GeneratorContract, run_contract

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "docs" / "examples" / "cxraug_classmean"


def install_example(site: Path) -> None:
    """What `pip install` of the example package leaves behind, without pip: its module and a
    dist-info whose entry_points.txt is read from the package's own pyproject.toml."""
    project = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())
    for module in project["tool"]["setuptools"]["py-modules"]:
        (site / f"{module}.py").write_text((EXAMPLE / f"{module}.py").read_text())
    name, version = project["project"]["name"], project["project"]["version"]
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    groups = project["project"]["entry-points"]
    (info / "entry_points.txt").write_text(
        "".join(f"[{g}]\n" + "".join(f"{k} = {v}\n" for k, v in eps.items()) for g, eps in groups.items())
    )


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


def test_docs_show_the_example_pyproject_whole() -> None:
    """docs/plugins.md quotes the example's pyproject.toml in full (its comments aside)."""
    doc = (ROOT / "docs" / "plugins.md").read_text()
    block = doc.split("Its `pyproject.toml`, whole:")[1].split("```toml\n")[1].split("```")[0]
    lines = (EXAMPLE / "pyproject.toml").read_text().splitlines(keepends=True)
    assert block == "".join(line for line in lines if not line.startswith("#")).lstrip("\n")


def test_unknown_plugin_suggests_the_closest_name(phantom32: Path) -> None:
    r = CliRunner().invoke(app, ["train-gen", "--plugin", "cgna", "--data", str(phantom32), "--out", "unused"])
    assert r.exit_code == 2
    lines = [line for line in r.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "did you mean 'cgan'?" in lines[0], r.output
    with pytest.raises(UserError) as e:
        registry.get("zzzz")
    assert "did you mean" not in str(e.value)


class TestExampleMeetsContract(GeneratorContract):
    """The documented example, installed from its package folder, through the public suite."""

    plugin = "classmean"

    @pytest.fixture(autouse=True)
    def _installed(self, third_party: Path) -> None:
        pass


def test_contract_catches_a_plugin_that_drops_its_rng(third_party: Path) -> None:
    """The example draws dequantization noise from self.rng: without its rng in state() a
    resumed run would draw other noise, and the suite's exact-resume check says so."""
    example = registry.get("classmean")

    class Forgetful(example):
        def state(self) -> dict[str, Any]:
            return {k: v for k, v in super().state().items() if k != "rng"}

        def load_state(self, state: dict[str, Any]) -> None:
            super().load_state({**state, "rng": self.rng.get_state()})

    run_contract(example)
    with pytest.raises(AssertionError):
        run_contract(Forgetful)


PLUGIN_WITH_CHECKS = """
from pydantic import BaseModel, Field
from cxraug.errors import UserError
from cxraug_classmean import ClassMean, ClassMeanConfig

class Widths(BaseModel):
    width: int = Field(gt=0)

class StrictConfig(ClassMeanConfig):
    width: int = 8

class Strict(ClassMean):
    name = "strict"
    Config = StrictConfig

    def build(self):
        if self.spec.size % self.config.width:
            raise UserError(f"model key 'width' ({self.config.width}) must divide the image size ({self.spec.size})")
        Widths(width=self.config.width - 100)  # a plugin's own pydantic check of a derived setting
        super().build()

class Loose(ClassMean):
    name = "loose"
    Config = dict
"""


@pytest.mark.parametrize(
    ("plugin", "sets", "message"),
    [
        ("strict", ["width=5"], "model key 'width' (5) must divide the image size (32)"),
        ("strict", ["width=8"], "strict model key 'width': Input should be greater than 0"),
        ("loose", [], "its Config must subclass cxraug.generator.PluginConfig"),
    ],
)
def test_a_bad_setting_in_build_is_one_line(
    third_party: Path, tmp_path: Path, phantom32: Path, plugin: str, sets: list[str], message: str
) -> None:
    """UserError, a pydantic ValidationError raised in build(), and a Config that is not a
    PluginConfig: one line on stderr and exit code 2, before any run directory is made."""
    (third_party / "strict_plugin.py").write_text(PLUGIN_WITH_CHECKS)
    info = third_party / "strict_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: strict-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[cxraug.generators]\nstrict = strict_plugin:Strict\nloose = strict_plugin:Loose\n"
    )
    cmd = [sys.executable, "-m", "cxraug", "train-gen", "--plugin", plugin, "--data", str(phantom32),
           "--out", str(tmp_path / "runs"), *(a for s in sets for a in ("--set", s))]  # fmt: skip
    path = os.pathsep.join(str(p) for p in (third_party, ROOT, ROOT / "plugins"))  # this checkout's cxraug
    env = {"PYTHONPATH": path, "PATH": "/usr/bin:/bin", "CXRAUG_THREADS": "1"}
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert r.returncode == 2, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and message in r.stderr, r.stderr
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
