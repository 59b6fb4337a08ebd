"""The plans of train-gen, score and compare (issue 34): printed before the work, and alone with
--plan (exit 0, nothing written), with counts that are the dataset's and times measured here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_helpers import run_main as _cli
from gen_helpers import tiny_run
from test_score_support import PixelProjection

from cxraug.data.prepared import open_prepared
from cxraug.trainplan import TrainPlan

TINY_CGAN = ["--set", "z_dim=16", "--set", "g_ch=4", "--set", "d_ch=4", "--set", "max_ch=16", "--set", "embed_dim=8"]


def _words(text: str) -> str:
    return " ".join(text.split())


def test_train_plan_arithmetic():
    base = dict(plugin="cgan", data="d", n_train=640, batch_size=64, processes=1, start=0, clock="wall")
    capped = TrainPlan(**base, steps=100, time_limit_min=None, step_s=0.5)
    assert capped.seconds == 50 and "10.0 passes" in capped.lines()[1] and "ending at the step cap" in capped.lines()[2]
    limited = TrainPlan(**base, steps=None, time_limit_min=1, step_s=0.5)
    assert limited.seconds == 60 and "about 120 steps by then" in limited.lines()[2]
    resumed = TrainPlan(**{**base, "start": 50}, steps=1000, time_limit_min=1, step_s=0.5, used_s=30)
    assert resumed.seconds == 30 and "about 110 steps by then" in resumed.lines()[2]  # 30 s left of 60
    assert "not measured" in TrainPlan(**base, steps=100, time_limit_min=None, step_s=None).lines()[2]


def test_train_gen_plan_alone_writes_no_run(phantom32, tmp_path, capsys):
    argv = ["train-gen", "--plugin", "cgan", "--data", str(phantom32), "--out", str(tmp_path / "runs"),
            "--steps", "50", "--batch-size", "8", *TINY_CGAN, "--plan"]  # fmt: skip
    code, printed, err = _cli(argv, capsys)
    assert code == 0, err
    n = len(open_prepared(phantom32).labels("train"))
    text = _words(printed)
    assert f"cgan on phantom32 ({n} training images)" in text
    assert f"budget: 50 steps of 8 images ({50 * 8 / n:.1f} passes over the training images)" in text
    assert "ending at the step cap" in text and "measured over 2 steps" in text
    assert not (tmp_path / "runs").exists()


def test_train_gen_prints_its_plan_first_and_resume_plan_changes_nothing(phantom32, tmp_path, capsys):
    argv = ["train-gen", "--plugin", "cgan", "--data", str(phantom32), "--out", str(tmp_path / "runs"),
            "--steps", "4", "--batch-size", "8", *TINY_CGAN]  # fmt: skip
    code, printed, err = _cli(argv, capsys)
    assert code == 0, err
    assert "plan of train-gen" in printed and "budget: 4 steps" in _words(printed) and not err.strip()
    (run,) = [p for p in (tmp_path / "runs").iterdir() if p.is_dir()]
    before = (run / "config.json").read_bytes()
    code, printed, err = _cli(["train-gen", "--resume", str(run), "--steps", "9", "--plan"], capsys)
    assert code == 0, err
    assert "budget: 9 steps" in _words(printed) and "from step 4" in printed
    assert (run / "config.json").read_bytes() == before  # --plan wrote nothing


def test_api_train_gen_plan_only_writes_nothing(phantom32, tmp_path):
    from cxraug import api

    said: list[str] = []
    sets = {"z_dim": 16, "g_ch": 4, "d_ch": 4, "max_ch": 16, "embed_dim": 8}
    planned = api.train_gen(
        plugin="cgan", data=phantom32, out=tmp_path / "runs", steps=50, batch_size=8, sets=sets, plan_only=True,
        say=said.append,
    )  # fmt: skip
    assert planned.run is None and planned.reason == "plan" and planned.plan is not None
    assert planned.plan.steps == 50 and planned.plan.step_s is not None and said == planned.plan.lines()
    assert not (tmp_path / "runs").exists()


@pytest.fixture
def cheap_extractor(monkeypatch: pytest.MonkeyPatch, phantom32: Path) -> PixelProjection:
    from cxraug.metrics import features, inception

    ex = PixelProjection(open_prepared(phantom32).size)
    monkeypatch.setattr(inception, "locate_inception_weights", lambda path=None: "test-weights")
    monkeypatch.setattr(features, "load_feature_extractor", lambda weights=None, device=None: ex)
    return ex


def test_score_and_compare_plans(phantom32, tmp_path, capsys, cheap_extractor):
    run = tiny_run("cgan", phantom32, tmp_path / "runs", steps=2)
    data = open_prepared(phantom32)
    val, train = data.counts("val"), data.counts("train")
    classes = ["No Finding", "Effusion"]
    argv = ["score", "--run", str(run), "-n", "30", "--classes", ",".join(classes), "--out", str(tmp_path / "s")]
    code, printed, err = _cli([*argv, "--plan"], capsys)
    assert code == 0, err
    text = _words(printed)
    assert "plan of score on phantom32 (val split), 2 classes" in text
    assert f"{run.name}: 60 images to draw (30 per class)" in text
    assert f"real images of the split: {val['No Finding'] + val['Effusion']}" in text
    n_train = train["No Finding"] + train["Effusion"]
    assert f"memorization: {n_train} training images" in text
    assert f"at most {60 + val['No Finding'] + val['Effusion'] + n_train} images" in text
    assert not (tmp_path / "s").exists() and not (run / "scores").exists()
    # --json --plan: stdout is the plan as one JSON object, its lines on stderr
    code, printed, err = _cli([*argv, "--plan", "--json"], capsys)
    assert code == 0, err
    doc = json.loads(printed)
    assert doc["kind"] == "plan" and doc["synthetic"] == {run.name: {"No Finding": 30, "Effusion": 30}}
    assert doc["n_extract"] == 60 + val["No Finding"] + val["Effusion"] + n_train and "plan of score" in err
    # the same plan on stderr before a real score; stdout stays the JSON
    code, printed, err = _cli([*argv, "--json", "--min-images", "6"], capsys)
    assert code == 0, err
    assert "plan of score" in err and json.loads(printed)["rows"]

    code, printed, err = _cli(["compare", str(run), str(run), "-n", "10", "--classes", ",".join(classes),
                               "--out", str(tmp_path / "c"), "--plan"], capsys)  # fmt: skip
    assert code == 0, err
    text = _words(printed)
    assert "plan of compare on phantom32" in text and f"{run.name}: 20 images to draw" in text
    assert "real-vs-real floor (training images)" in text and "estimated time: at most" in text
    assert not (tmp_path / "c").exists()

    # from Python: the same plans, returned (plan_only) and said, nothing written
    from cxraug import api

    said: list[str] = []
    scores = api.score(run=run, n=30, classes=classes, out=tmp_path / "s2", plan_only=True, say=said.append)
    assert scores.out is None and scores.result is None and scores.plan is not None
    assert scores.plan.synthetic == {run.name: {"No Finding": 30, "Effusion": 30}} and said == scores.plan.lines()
    compared = api.compare([run, run], n=10, classes=classes, out=tmp_path / "c2", plan_only=True)
    assert compared.out is None and compared.plan is not None and compared.plan.command == "compare"
    assert not (tmp_path / "s2").exists() and not (tmp_path / "c2").exists()
