"""The diffusion plugin through cxraug's own loop and CLI: exact resume, synth with --set options."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from gen_helpers import tiny_run
from typer.testing import CliRunner

from cxraug import runs
from cxraug.cli import app
from cxraug.train import spec_from_run, train

pytest.importorskip("diffusers")

runner = CliRunner()


def final_state(run: Path) -> dict:
    _step, path = runs.checkpoints(run)[-1]
    return torch.load(path, map_location="cpu", weights_only=True)["plugin"]


def test_resume_through_the_loop_is_exact(tmp_path: Path, phantom32: Path) -> None:
    straight = tiny_run("diffusion", phantom32, tmp_path / "a", steps=4, checkpoint_every=2, grid_per_class=1)
    half = tiny_run("diffusion", phantom32, tmp_path / "b", steps=2, checkpoint_every=2, grid_per_class=1)
    train(half, spec_from_run(half, {"steps": 4}), resume=True)
    a, b = final_state(straight), final_state(half)
    assert a["steps_done"] == b["steps_done"] == 4
    for part in ("model",):
        for k, v in a[part].items():
            assert torch.equal(v, b[part][k]), k
    for k, v in a["ema"]["weights"].items():
        assert torch.equal(v, b["ema"]["weights"][k]), k
    assert torch.equal(a["rng"], b["rng"])
    losses = lambda run: [
        r["loss"] for x in (run / "metrics.jsonl").read_text().splitlines() if (r := json.loads(x))["kind"] == "train"
    ]
    assert losses(straight) == losses(half)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, phantom32: Path) -> Path:
    return tiny_run("diffusion", phantom32, tmp_path_factory.mktemp("runs"), steps=2, grid_per_class=1)


def test_synth_with_sampling_options(run: Path, tmp_path: Path) -> None:
    from cxraug.synthset import open_synthetic

    args = ["synth", "--run", str(run), "--class", "Hernia", "-n", "3", "--seed", "1", "--batch-size", "2"]
    sets = ["--set", "sampler=ddim", "--set", "steps=5", "--set", "guidance=2.0"]
    r1 = runner.invoke(app, [*args, *sets, "--out", str(tmp_path / "a")])
    assert r1.exit_code == 0, r1.output
    r2 = runner.invoke(app, [*args, *sets, "--out", str(tmp_path / "b")])
    assert r2.exit_code == 0, r2.output
    a, b = open_synthetic(tmp_path / "a"), open_synthetic(tmp_path / "b")
    assert list(a.manifest()["checksum"]) == list(b.manifest()["checksum"])
    assert a.provenance["options"] == {"sampler": "ddim", "steps": 5, "guidance": 2.0, "eta": 0.0, "clip": True}


@pytest.mark.parametrize(
    ("option", "message"),
    [("sampler=euler", "sampler"), ("steps=0", "steps"), ("eta=0.5", "eta applies to the ddim sampler only")],
)
def test_synth_bad_option_is_one_line(run: Path, tmp_path: Path, option: str, message: str) -> None:
    r = runner.invoke(app, ["synth", "--run", str(run), "--class", "Hernia", "-n", "1", "--out", str(tmp_path / "x"),
                            "--set", option])  # fmt: skip
    assert r.exit_code == 2
    assert message in r.output and len(r.output.strip().splitlines()) == 1, r.output
    assert not (tmp_path / "x").exists()


def test_resume_with_dropout_is_exact_whatever_the_global_rng(tmp_path: Path, phantom32: Path) -> None:
    """Dropout draws from torch's global RNG, which no checkpoint holds and helper trainings
    (the reference classifier's set_seed) reseed: the loop seeds it per step."""
    model = {"dropout": 0.5}
    straight = tiny_run("diffusion", phantom32, tmp_path / "a", steps=4, checkpoint_every=2, grid_per_class=1,
                        model=model)  # fmt: skip
    half = tiny_run("diffusion", phantom32, tmp_path / "b", steps=2, checkpoint_every=2, grid_per_class=1, model=model)
    torch.manual_seed(12345)  # what a helper training run in between would do
    train(half, spec_from_run(half, {"steps": 4}), resume=True)
    a, b = final_state(straight), final_state(half)
    assert a["steps_done"] == b["steps_done"] == 4
    for k, v in a["model"].items():
        assert torch.equal(v, b["model"][k]), k


def test_helper_training_leaves_the_global_rng_alone(phantom32: Path) -> None:
    from cxraug.data.prepared import open_prepared
    from cxraug.metrics.reference import ReferenceConfig, train_reference

    torch.manual_seed(7)
    before = torch.random.get_rng_state()
    train_reference(open_prepared(phantom32), ReferenceConfig(model="tiny", epochs=1), torch.device("cpu"))
    assert torch.equal(torch.random.get_rng_state(), before)


def test_sampling_options_are_part_of_a_sets_identity(run: Path) -> None:
    """Issue 21 item 8: with --set guidance=2.0 the set must not land on (and be refused by, or
    --overwrite) the set made without it."""
    from cxraug.synthset import open_synthetic

    args = ["synth", "--run", str(run), "--class", "Hernia", "-n", "2", "--seed", "3", "--batch-size", "2"]
    plain = runner.invoke(app, args)
    guided = runner.invoke(app, [*args, "--set", "guidance=2.0", "--set", "steps=5"])
    assert plain.exit_code == 0 and guided.exit_code == 0, plain.output + guided.output
    sets = sorted(p.name for p in (run / "synth").iterdir() if p.name.startswith("Hernia-n2-seed3"))
    assert sets == ["Hernia-n2-seed3", "Hernia-n2-seed3-guidance2.0-steps5"]
    assert open_synthetic(run / "synth" / sets[1]).provenance["options"]["guidance"] == 2.0
    assert open_synthetic(run / "synth" / sets[0]).provenance["options"]["guidance"] != 2.0
    # The same --out with other options: refused without suggesting --overwrite as the way out.
    again = runner.invoke(app, [*args, "--set", "guidance=3.0", "--out", str(run / "synth" / sets[1])])
    assert (
        again.exit_code == 2 and "other settings (options)" in again.output and "choose another --out" in again.output
    )
