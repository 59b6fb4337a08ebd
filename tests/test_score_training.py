"""Scoring during training (`fid_during_training`) and `cxraug score --run` on a real tiny
cGAN run: the contract between the metrics package and the training loop."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_score_support import PixelProjection, copying_generator, noise_generator
from typer.testing import CliRunner

from cxraug.data.prepared import open_prepared
from cxraug.metrics import fid_during_training


def test_fid_during_training_small_sample_overall(phantom32: Path, tmp_path: Path) -> None:
    data = open_prepared(phantom32)
    ex = PixelProjection(data.size)
    kw = {"n": 40, "seed": 1, "cache_dir": tmp_path, "extractor": ex, "kid_subsets": 10}
    copy = fid_during_training(copying_generator(phantom32), data, **kw)
    noise = fid_during_training(noise_generator(phantom32), data, **kw)
    assert copy["status"] == "ok" and copy["split"] == "val" and copy["size"] == 32
    assert copy["n_real"] == 40 and copy["n_fake"] == 40  # val has 45 images: a fixed subset of 40
    assert copy["extractor"] == ex.name and copy["weights_sha256"] == "seed0"
    assert noise["fid"] > 5 * copy["fid"] and noise["kid"] > copy["kid"]
    assert fid_during_training(copying_generator(phantom32), data, **kw)["fid"] == pytest.approx(copy["fid"], rel=1e-12)
    json.dumps(copy)  # goes into metrics.jsonl as is


def test_fid_during_training_refuses_test_and_reports_too_few(phantom32: Path, tmp_path: Path) -> None:
    data = open_prepared(phantom32)
    ex = PixelProjection(data.size)
    with pytest.raises(ValueError, match="test split"):
        fid_during_training(noise_generator(phantom32), data, split="test", extractor=ex, cache_dir=tmp_path)
    out = fid_during_training(noise_generator(phantom32), data, n=12, extractor=ex, cache_dir=tmp_path)
    assert out["status"].startswith("too few images") and "fid" not in out and out["n_real"] == 12


def test_score_a_trained_cgan_run(phantom32: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from gen_helpers import tiny_run

    from cxraug.cli import app
    from cxraug.metrics import features, inception

    run = tiny_run("cgan", phantom32, tmp_path / "runs")
    ex = PixelProjection(open_prepared(phantom32).size)
    monkeypatch.setattr(inception, "locate_inception_weights", lambda path=None: "test-weights")
    monkeypatch.setattr(features, "load_feature_extractor", lambda weights=None, device=None: ex)
    args = ["score", "--run", str(run), "--classes", "No Finding,Infiltration", "--n", "12", "--min-images", "6"]
    result = CliRunner().invoke(app, [*args, "--json", "--device", "cpu", "--kid-subsets", "5"])
    assert result.exit_code == 0, (result.output, result.exception)
    res = json.loads(result.stdout)
    assert res["source"]["plugin"] == "cgan" and res["source"]["step"] == 4
    assert res["data"]["path"] == str(phantom32.resolve())  # from the run's export, no --data needed
    assert [r["n_fake"] for r in res["rows"][:2]] == [12, 12] and res["rows"][0]["status"] == "ok"
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert lines[-1]["kind"] == "score" and lines[-1]["step"] == 4
    # A bad sampling option for the run's plugin: one line, exit code 2, nothing scored.
    bad = CliRunner().invoke(app, [*args, "--set", "truncaton=1.5", "--out", str(tmp_path / "bad")])
    err = bad.stderr.strip()
    assert bad.exit_code == 2 and len(err.splitlines()) == 1, bad.output
    assert "unknown cgan sampling option 'truncaton'; known: truncation" in err, err
    assert not (tmp_path / "bad").exists()
