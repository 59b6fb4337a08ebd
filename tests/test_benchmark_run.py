"""End to end on the phantom set with a tiny classifier: the CLI run, the report files, the
training sets recorded, resuming without retraining, added seeds, changed settings, and
determinism per seed."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from test_benchmark_support import make_synthetic_set

from cxraug.benchmark.config import build_config
from cxraug.benchmark.outfolder import OWN_FILES
from cxraug.benchmark.runner import run_benchmark
from cxraug.benchmark.statistics import HELPED, HURT, NO_EVIDENCE
from cxraug.cli import main
from cxraug.errors import UserError

# 2 seeds: no verdict is reachable, so --force trains anyway
ARGS = ["--arms", "real,oversample,cgan", "--seeds", "2", "--ratio", "+20", "--force"]
SETS = ["--set", "model=tiny", "--set", "epochs=1", "--set", "grid_per_class=4"]


@pytest.fixture(scope="module")
def synthetic(phantom32, tmp_path_factory):
    return make_synthetic_set(tmp_path_factory.mktemp("syn") / "cgan", phantom32, {"Hernia": 30, "Pneumonia": 30})


def _cfg(synthetic, **over):
    opts = {"arms": ["real", "oversample", "cgan"], "seeds": [0, 1], "ratios": ["+20"], "model": "tiny",
            "epochs": 1, "synthetic": {"cgan": synthetic}, "controlled_imbalance": {"Hernia": 4},
            "plots": False}  # fmt: skip
    return build_config(None, {**opts, **over})


def test_end_to_end_resume_and_determinism(phantom32, synthetic, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CXRAUG_THREADS", "1")
    monkeypatch.setenv("COLUMNS", "160")
    out = tmp_path / "bench"
    argv = ["benchmark", "--data", str(phantom32), "--out", str(out), "--synthetic", f"cgan={synthetic}", *ARGS, *SETS]
    with pytest.raises(SystemExit) as e:
        main([*argv, "--controlled-imbalance", "Hernia=4"])
    assert e.value.code == 0
    printed = capsys.readouterr().out
    assert "10 runs trained, 0 reused" in printed and "the question: test AUROC" in printed

    # The report: one row per arm x seed x class, with the training sets the arms claim.
    rows = pd.read_csv(out / "results.csv")
    assert len(rows) == 5 * 2 * 15  # real, oversample, cgan and its copy and noise controls
    hernia = rows[rows["class"] == "Hernia"].set_index(["arm", "seed"])
    assert (hernia["n_train_real"] == 4).all() and hernia["rare"].all()
    assert hernia.loc[("cgan", 0), "n_train_synthetic"] == 20 and hernia.loc[("real", 0), "n_train_synthetic"] == 0
    # The controls add exactly what the synthetic arm adds, per class.
    assert hernia.loc[("copy", 0), "n_train_synthetic"] == 20 and hernia.loc[("noise", 1), "n_train_synthetic"] == 20
    pneu = rows[(rows["class"] == "Pneumonia") & (rows["arm"] == "cgan")]
    assert (pneu["n_train_synthetic"] == 20).all()
    runs = pd.read_csv(out / "runs.csv")
    assert sorted(zip(runs["arm"], runs["seed"], strict=True)) == sorted(
        (a, s) for a in ("real", "oversample", "cgan", "copy", "noise") for s in (0, 1)
    )
    # Equal training: every arm and seed took the same number of optimiser steps (1 pass over the
    # largest arm: 283 real + 40 added images, batch 64 -> 6 steps), whatever its own set's size.
    assert set(runs["steps"]) == {6}
    assert (runs["n_test"] == 68).all() and (runs["n_train_real"] == 287 - 8 + 4).all()
    results = json.loads((out / "results.json").read_text())
    assert results["rare_classes"] == ["Hernia"] and results["reference"] == "real"
    assert [(c["arm"], c["against"], c["other"]) for c in results["primary"]] == [
        ("cgan", "copy control", "copy"), ("cgan", "best baseline", results["best_baseline"]["Hernia"]["arm"])]  # fmt: skip
    assert results["best_baseline"]["Hernia"]["arm"] in ("real", "oversample")  # chosen on validation
    # Hernia has 3 test images of 1 patient (< min_test_patients=10): numbers, but no verdict.
    assert {c["verdict"] for c in results["primary"]} == {"no verdict: 1 test patient with Hernia, 10 needed"}
    assert json.loads((out / "benchmark.json").read_text())["question"]["comparisons"] == [
        {k: c[k] for k in ("class", "arm", "against")} | {"other": "copy" if c["against"] == "copy control" else None}
        for c in results["primary"]
    ]  # declared before training
    assert "Hernia (1)" in printed and "No intervals: 2 seed(s), 3 needed" in printed
    # The terminal says why there is no verdict, not "adjusted over 0 comparisons".
    words = " ".join(printed.split())
    assert "no verdicts (2 seeds, 3 needed)" in words and "over 0 comparisons" not in words
    summary = (out / "summary.md").read_text()
    # The page starts with the answer; a number without an interval says why once, not per cell.
    assert summary.index("## The answer: do the synthetic images help") < summary.index("## How it was measured")
    assert "**No verdicts** (2 seeds, 3 needed)" in summary
    assert "**Hernia** (4 real training images; 3 test images of 1 test patient)" in summary
    assert "(no interval:" not in summary and "1 test patient with Hernia, 10 needed" in summary
    assert "6 optimiser steps of batch 64 for every arm and seed" in summary
    assert "NOT REAL DATA" in summary
    assert "No verdicts (2 seeds, 3 needed), so nothing to adjust" in summary and "over 0 comparisons" not in summary
    html = (out / "summary.html").read_text()
    assert "<h2>The answer: do the synthetic images help beyond their controls and the best baseline?</h2>" in html
    assert html.count('src="data:image/png;base64,') == 4  # 3 plots + the cgan grid, inline
    for f in ("class_auroc.png", "roc_curves.png", "confusion_matrices.png", "synthetic_cgan.png"):
        assert (out / f).stat().st_size > 1000, f

    # Resume: nothing is trained again and stored runs are untouched.
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("runs/*/*/result.json")}
    assert len(stamps) == 10
    again = run_benchmark(phantom32, _cfg(synthetic), out)
    assert (again.trained, again.reused) == (0, 10)
    assert {p: p.stat().st_mtime_ns for p in out.glob("runs/*/*/result.json")} == stamps
    assert not (out / "roc_curves.png").exists()  # plots=False: no stale figure left behind
    lenient = run_benchmark(phantom32, _cfg(synthetic, min_test_patients=0), out)  # a reporting option
    assert lenient.trained == 0 and {c.verdict for c in lenient.primary} == {"no verdict: 2 seeds, 3 needed"}
    assert again.runs.sort_values(["arm", "seed"])["macro_auroc"].tolist() == pytest.approx(
        runs.sort_values(["arm", "seed"])["macro_auroc"].tolist()
    )

    # A third seed trains only the new arm x seed pairs.
    more = run_benchmark(phantom32, _cfg(synthetic, seeds=[0, 1, 2], min_test_patients=0, bootstrap_draws=200), out)
    assert (more.trained, more.reused) == (5, 10)
    # Three seeds: bootstrap intervals, inside the metric's range, and adjusted verdicts.
    assert {c.verdict for c in more.primary} <= {HELPED, HURT, NO_EVIDENCE}
    assert more.family_size == 2  # the primary family: cgan vs copy and vs the best baseline on Hernia
    for c in more.primary:
        d = c.diff
        assert d.has_interval and -1 <= d.low <= d.high <= 1 and d.p_adjusted >= d.p
    assert all(v["diff"].p_adjusted is None for v in more.exploratory())  # exploratory: never adjusted
    for stats in more.class_summary.values():
        assert all(0 <= e.low <= e.high <= 1 for e in stats.values() if e.has_interval)

    # Other settings are never mixed in silently.
    with pytest.raises(UserError, match=r"trained with other settings .*epochs: 1 -> 2"):
        run_benchmark(phantom32, _cfg(synthetic, epochs=2), out)

    # Determinism: retraining from scratch gives the same predictions per seed.
    with np.load(out / "runs/cgan/seed-1/predictions.npz") as z:
        before = z["test_probs"]
    assert {f.name for f in out.iterdir() if f.is_file()} <= OWN_FILES, "a file --overwrite would leave behind"
    (out / "my-notes.txt").write_text("mine")
    (out / ".results.csv.k2x_9a.tmp").write_text("torn")  # a killed write of the benchmark's own
    fresh = run_benchmark(phantom32, _cfg(synthetic, arms=["cgan"], seeds=[1]), out, overwrite=True)
    assert (fresh.trained, fresh.reused) == (3, 0)  # cgan and its two controls
    assert not (out / "runs" / "real").exists()  # --overwrite started again
    assert (out / "my-notes.txt").read_text() == "mine", "--overwrite deleted a file the benchmark did not write"
    assert not (out / ".results.csv.k2x_9a.tmp").exists()
    with np.load(out / "runs/cgan/seed-1/predictions.npz") as z:
        assert np.allclose(z["test_probs"], before, atol=1e-6)
