"""cxraug synth: determinism, manifest and provenance, resume after interruption, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from gen_helpers import tiny_run
from typer.testing import CliRunner

from cxraug.cli import app
from cxraug.errors import UserError
from cxraug.synth import SynthConfig, synth
from cxraug.synthset import MANIFEST_COLUMNS, open_synthetic

runner = CliRunner()


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, phantom32: Path) -> Path:
    return tiny_run("cgan", phantom32, tmp_path_factory.mktemp("runs"), steps=2)


def test_manifest_provenance_and_determinism(run: Path, tmp_path: Path) -> None:
    a = synth(SynthConfig(run=run, classes=["hernia", "Mass"], n=5, out=tmp_path / "a", seed=1, batch_size=2))
    b = synth(SynthConfig(run=run, classes=["Hernia,mass"], n=5, out=tmp_path / "b", seed=1, batch_size=2))
    c = synth(SynthConfig(run=run, classes=["Hernia", "Mass"], n=5, out=tmp_path / "c", seed=2, batch_size=2))
    sa = open_synthetic(a)
    df = sa.manifest()
    assert tuple(df.columns) == MANIFEST_COLUMNS
    assert df["class"].value_counts().to_dict() == {"Mass": 5, "Hernia": 5}
    assert set(df["label"]) == {sa.classes.index("Hernia"), sa.classes.index("Mass")}
    assert df["plugin"].eq("cgan").all() and df["step"].eq(2).all()
    prov = sa.provenance
    assert prov["complete"] and prov["n_per_class"] == 5 and prov["size"] == 32
    assert prov["data"]["splits"] == ["train"] and prov["data"]["fingerprint"]
    assert list(df["checksum"]) == list(open_synthetic(b).manifest()["checksum"]), "same seed, same images"
    assert list(df["checksum"]) != list(open_synthetic(c).manifest()["checksum"])
    imgs, labels = sa.load()
    assert imgs.shape == (10, 32, 32) and imgs.dtype.name == "uint8" and len(labels) == 10
    assert not list(Path(a).glob("manifest.part*")), "parts are merged away"


def test_interrupted_synth_resumes(run: Path, tmp_path: Path) -> None:
    class StopAfter:
        def __init__(self, n: int) -> None:
            self.n = n

        def task(self, description: str, total: int | None):
            import contextlib

            @contextlib.contextmanager
            def cm():
                def advance(k: int = 1) -> None:
                    self.n -= k
                    if self.n <= 0:
                        raise KeyboardInterrupt

                yield advance

            return cm()

    cfg = SynthConfig(run=run, classes=["all"], n=3, out=tmp_path / "s", seed=0, batch_size=2)
    with pytest.raises(KeyboardInterrupt):
        synth(cfg, StopAfter(5))
    assert not json.loads((tmp_path / "s" / "provenance.json").read_text())["complete"]
    with pytest.raises(UserError, match="incomplete"):
        open_synthetic(tmp_path / "s")
    with pytest.raises(UserError, match="other settings"):
        synth(SynthConfig(run=run, classes=["all"], n=4, out=tmp_path / "s", seed=0, batch_size=2))
    synth(cfg)
    straight = synth(SynthConfig(run=run, classes=["all"], n=3, out=tmp_path / "t", seed=0, batch_size=2))
    resumed = open_synthetic(tmp_path / "s").manifest()
    assert list(resumed["checksum"]) == list(open_synthetic(straight).manifest()["checksum"])
    assert len(resumed) == 3 * 15
    with pytest.raises(UserError, match="already holds a finished"):
        synth(cfg)
    synth(SynthConfig(**{**cfg.__dict__, "overwrite": True}))


def test_synth_killed_before_its_first_flush_reruns(run: Path, tmp_path: Path) -> None:
    """Found by the long kill run: killed before the manifest part's header reached the disk,
    the part was empty; each rerun appended rows without a header, which then never read, so
    "run synth again" failed forever."""
    cfg = SynthConfig(run=run, classes=["Hernia"], n=5, out=tmp_path / "s", seed=1, batch_size=2)
    straight = open_synthetic(synth(cfg)).manifest()
    out = tmp_path / "s"
    prov = json.loads((out / "provenance.json").read_text())
    (out / "provenance.json").write_text(json.dumps({**prov, "complete": False}))
    (out / "manifest.csv").unlink()
    for png in out.glob("images/*/*.png"):
        png.unlink()
    (out / "manifest.part0.csv").write_bytes(b"")  # the state the kill left
    again = open_synthetic(synth(cfg)).manifest()
    assert list(again["checksum"]) == list(straight["checksum"])


def test_cli_synth_and_bad_inputs(run: Path, tmp_path: Path) -> None:
    r = runner.invoke(app, ["synth", "--run", str(run), "--class", "Hernia", "-n", "3", "--out", str(tmp_path / "o")])
    assert r.exit_code == 0, r.output
    assert "wrote 3 images" in r.output and len(pd.read_csv(tmp_path / "o" / "manifest.csv")) == 3
    cases = [
        (["--class", "Herna"], "did you mean 'Hernia'"),
        (["--class", "Hernia", "-n", "0"], "-n must be at least 1"),
        (["--class", "Hernia", "--set", "bogus=1"], "bogus"),
        (["--class", "Hernia", "-n", "3", "--out", str(tmp_path / "o")], "already holds a finished"),
        (["--class", "Hernia", "--out", str(tmp_path / "o")], "made with other settings (n_per_class)"),
    ]
    for args, message in cases:
        r = runner.invoke(app, ["synth", "--run", str(run), *args])
        assert r.exit_code == 2 and message in r.output and "Traceback" not in r.output, (args, r.output)
    r = runner.invoke(app, ["synth", "--run", str(tmp_path / "nope"), "--class", "Hernia"])
    assert r.exit_code == 2 and "does not exist" in r.output
    assert not (Path(run) / "synth" / "Hernia-n0-seed0").exists()


def test_classes_without_training_images_are_not_sampled_silently(run: Path, tmp_path: Path) -> None:
    # The same run, as if its training set had held no Hernia image.
    import shutil

    unseen = tmp_path / "run"
    shutil.copytree(run, unseen)
    for path in (unseen / "config.json", unseen / "export" / "config.json"):
        config = json.loads(path.read_text())
        assert config["data"]["counts_train"]["Hernia"] > 0
        config["data"]["counts_train"]["Hernia"] = 0
        path.write_text(json.dumps(config))

    r = runner.invoke(app, ["synth", "--run", str(unseen), "--class", "Mass,Hernia", "--out", str(tmp_path / "x")])
    assert r.exit_code == 2 and "no training image of Hernia" in r.output and "--allow-unseen" in r.output, r.output
    assert not (tmp_path / "x").exists()

    r = runner.invoke(app, ["synth", "--run", str(unseen), "--class", "all", "-n", "1", "--out", str(tmp_path / "a")])
    assert r.exit_code == 0 and "left out (no training image): Hernia" in r.output, r.output
    prov = open_synthetic(tmp_path / "a").provenance
    assert prov["skipped_unseen"] == ["Hernia"] and "Hernia" not in prov["requested"] and len(prov["requested"]) == 14

    out = synth(SynthConfig(run=unseen, classes=["Hernia"], n=2, out=tmp_path / "h", allow_unseen=True))
    assert open_synthetic(out).manifest()["class"].tolist() == ["Hernia", "Hernia"]


def test_several_runs_write_one_set_each(run: Path, tmp_path: Path) -> None:
    import shutil

    twin = tmp_path / "twin"
    shutil.copytree(run, twin)
    r = runner.invoke(
        app, ["synth", "--run", f"{run},{twin}", "--class", "Hernia", "-n", "2", "--out", str(tmp_path / "o")]
    )
    assert r.exit_code == 0, r.output
    for name in (Path(run).name, "twin"):
        assert open_synthetic(tmp_path / "o" / name).provenance["n_per_class"] == 2
    r = runner.invoke(app, ["synth", "--run", str(run), "--run", str(tmp_path / "nope"), "--class", "Hernia", "-n", "2",
                            "--out", str(tmp_path / "p")])  # fmt: skip
    assert r.exit_code == 2 and "does not exist" in r.output and not (tmp_path / "p").exists(), r.output
