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


def test_training_evaluation_is_the_pooled_row_of_score(
    phantom32: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Training-time evaluation and `cxraug score` are one implementation: with every val image
    (n above the split's 45) the evaluation is score's "all" row for the same generator and seed,
    and the one extraction step and the one minimum-images rule are what both go through."""
    from cxraug.metrics import scoring
    from cxraug.metrics.score import ScoreConfig, score
    from cxraug.metrics.sources import generator_source

    data = open_prepared(phantom32)
    ex, gen = PixelProjection(data.size), copying_generator(phantom32)
    names = ["fid", "kid", "pr", "dc"]
    calls: list[str] = []
    for name in ("extract", "too_few"):
        original = getattr(scoring, name)
        monkeypatch.setattr(scoring, name, lambda *a, _f=original, _n=name: calls.append(_n) or _f(*a))
    kw = {"seed": 3, "kid_subsets": 10, "cache_dir": tmp_path}
    train = fid_during_training(gen, data, n=1000, extractor=ex, metrics=names, **kw)
    assert set(calls) == {"extract", "too_few"}
    calls.clear()
    val = data.labels("val")
    real = {c: int((val == i).sum()) for i, c in enumerate(data.classes) if (val == i).any()}
    cfg = ScoreConfig(n=max(real.values()), metrics=names, memorization=False, use_cache=False, **kw)
    pooled = score(data, generator_source(gen, seed=3), cfg, ex).rows[-1]
    assert set(calls) == {"extract", "too_few"}
    assert pooled["class"] == "all" and pooled["fake_per_class"] == real  # the real proportions: as many as real
    assert train["n_real"] == pooled["n_real"] == 45 and train["n_fake"] == pooled["n_fake"] == 45
    for k in ("fid", "kid", "kid_std", "precision", "recall", "density", "coverage"):
        # the same images; float32 features of batches of other sizes differ in the last bits
        assert train[k] == pytest.approx(pooled[k], rel=1e-6, abs=1e-9), k
    # The minimum-images rule is one function: a change to it is seen by both.
    monkeypatch.setattr(scoring, "too_few", lambda n_real, n_fake, min_images: "too few (changed rule)")
    assert (
        fid_during_training(gen, data, n=1000, extractor=ex, metrics=names, **kw)["status"] == "too few (changed rule)"
    )
    assert {r["status"] for r in score(data, generator_source(gen, seed=3), cfg, ex).rows} == {"too few (changed rule)"}
