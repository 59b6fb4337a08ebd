"""Generator replicates in the benchmark (``--synthetic NAME=DIR1,DIR2,DIR3``): each classifier
seed trains with one replicate in turn, the controls add what each replicate adds, the
bootstrap resamples replicates first, mixed replicates are refused in one line, and the page
says whether an interval covers one trained generator only."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_benchmark_support import make_synthetic_set

from cxraug.benchmark.bootstrap import StoredRun, arm_draws, make_draws
from cxraug.benchmark.config import build_config
from cxraug.benchmark.provenance import synthetic_fingerprint
from cxraug.benchmark.replicates import hierarchical_weights
from cxraug.benchmark.runner import run_benchmark
from cxraug.cli import main
from cxraug.significance import percentile_interval
from cxraug.synthset import open_synthetic

PER_CLASS = {"Hernia": 30, "Pneumonia": 30}


@pytest.fixture(scope="module")
def sets(phantom32, tmp_path_factory):
    root = tmp_path_factory.mktemp("reps")
    made = {f"r{i}": make_synthetic_set(root / f"r{i}", phantom32, PER_CLASS, seed=i, run=f"run-{i}") for i in range(3)}
    made["same-run"] = make_synthetic_set(root / "same", phantom32, PER_CLASS, seed=5, run="run-0")
    made["fewer"] = make_synthetic_set(root / "fewer", phantom32, {"Hernia": 20, "Pneumonia": 20}, run="run-9")
    made["other-data"] = make_synthetic_set(root / "od", phantom32, PER_CLASS, run="run-8", data_fingerprint="f" * 64)
    return made


def test_one_seed_per_replicate_keeps_the_seed_draw() -> None:
    """Identical replicates, one classifier seed each, leave the bootstrap as it is today."""
    draws = make_draws([f"p{i}" for i in range(40)], 3, 500, 0)
    rng = np.random.default_rng(1)
    assert hierarchical_weights(draws.seed_weights, [0, 1, 2], rng) is draws.seed_weights
    six = make_draws([f"p{i}" for i in range(40)], 6, 500, 0).seed_weights
    w = hierarchical_weights(six, [0, 1, 2, 0, 1, 2], rng)
    assert np.allclose(w.sum(axis=1), 1) and (w >= 0).all()
    two = hierarchical_weights(six, [0, 1, 0, 1, 0, 1], rng)  # two replicates: drawn with replacement
    assert set(np.round(two[:, [0, 2, 4]].sum(axis=1), 9)) <= {0.0, 0.5, 1.0}


def test_replicates_that_differ_widen_the_interval() -> None:
    """Six classifier seeds over three replicates: when the replicates' runs differ by construction
    (one generator's images make the classifier worse), the arm's interval is wider than when
    they are identical; the replicate level is resampled, not only the seeds."""
    rng = np.random.default_rng(0)
    n = 120
    labels = np.repeat([0, 1], n // 2)
    patients = [f"p{i}" for i in range(n)]
    draws = make_draws(patients, 6, 1000, 0, labels)

    def run(noise: float, seed: int) -> StoredRun:
        r = np.random.default_rng(seed)
        score = labels + r.normal(0, noise, n)
        probs = np.stack([1 - score, score], axis=1)
        return StoredRun(probs, np.array([0.5, 0.5]))

    good = [run(0.6, s) for s in range(6)]
    mixed = [run(0.6 if s % 3 else 2.5, s) for s in range(6)]  # replicate 0 (seeds 0 and 3) is bad
    groups = [0, 1, 2, 0, 1, 2]
    hier = draws.__class__(draws.patient_counts, hierarchical_weights(draws.seed_weights, groups, rng), draws.groups)

    def width(runs, d) -> float:
        low, high, _ = percentile_interval(arm_draws(runs, labels, d, [1])["macro_auroc"], 0.95)
        return high - low

    assert width(mixed, hier) > width(good, hier) and width(mixed, hier) > width(mixed, draws) * 0.9


def _cfg(synthetic, **over):
    opts = {"arms": ["real", "cgan"], "seeds": [0, 1, 2], "ratios": ["+20"], "model": "tiny", "epochs": 1,
            "synthetic": {"cgan": synthetic}, "controlled_imbalance": {"Hernia": 4}, "plots": False,
            "bootstrap_draws": 200}  # fmt: skip
    return build_config(None, {**opts, **over})


def test_each_seed_trains_with_one_replicate_in_turn(phantom32, sets, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("CXRAUG_THREADS", "1")
    reps = [sets["r0"], sets["r1"], sets["r2"]]
    out = tmp_path / "bench"
    report = run_benchmark(phantom32, _cfg([str(p) for p in reps]), out)
    for i, seed in enumerate((0, 1, 2)):
        key = json.loads((out / "runs" / "cgan" / f"seed-{seed}" / "result.json").read_text())["key"]
        assert key["replicate"] == i and key["synthetic"]["fingerprint"] == synthetic_fingerprint(
            open_synthetic(reps[i])
        )
    # The controls add exactly what each replicate adds.
    rows = report.per_class[report.per_class["class"].isin(["Hernia", "Pneumonia"])]
    added = rows.groupby(["arm", "class"])["n_train_synthetic"].agg(["min", "max"])
    for arm in ("copy", "noise"):
        for c in ("Hernia", "Pneumonia"):
            assert tuple(added.loc[(arm, c)]) == tuple(added.loc[("cgan", c)]) == (20, 20)
    summary = (out / "summary.md").read_text()
    assert "cgan (3 generator replicates)" in summary and "one trained generator only" not in summary
    assert "classifier seed i trains with replicate i mod 3" in summary
    stored = json.loads((out / "benchmark.json").read_text())["config"]
    assert stored["synthetic"]["cgan"] == str(reps[0]) and len(stored["synthetic_replicates"]["cgan"]) == 3
    # One set: the page says its intervals cover one trained generator only.
    single = run_benchmark(phantom32, _cfg(str(reps[0])), tmp_path / "one")
    assert (
        "cgan cover test patients and classifier seeds of one trained generator only"
        in (tmp_path / "one" / "summary.md").read_text()
    )
    assert single.plan.n_replicates("cgan") == 1


@pytest.mark.parametrize(
    ("second", "seeds", "expected"),
    [
        ("fewer", "3", "differs from"),
        ("same-run", "3", "come from the same run and step"),
        ("other-data", "3", "changed since the generator was trained"),  # the leakage check speaks first
        ("r1", "2", "need at least 2 classifier seeds"),
    ],
)
def test_mixed_replicates_are_refused_in_one_line(phantom32, sets, tmp_path, capsys, second, seeds, expected) -> None:
    third = [] if seeds == "2" else [str(sets["r2"])]
    syn = ",".join([str(sets["r0"]), str(sets[second]), *third])
    argv = ["benchmark", "--data", str(phantom32), "--out", str(tmp_path / "o"), "--set", "model=tiny",
            "--synthetic", f"cgan={syn}", "--seeds", "1" if seeds == "2" else seeds]  # fmt: skip
    with pytest.raises(SystemExit) as e:
        main(argv)
    err = capsys.readouterr().err
    assert e.value.code == 2 and len(err.strip().splitlines()) == 1 and expected in err, err
    assert not (tmp_path / "o" / "runs").exists()


def test_replicates_must_be_one_method(sets) -> None:
    """Read from the sets' provenance: another plugin, other training data or other sampling
    settings make another method."""
    from dataclasses import replace

    from cxraug.benchmark.replicates import check_replicate_sets
    from cxraug.errors import UserError

    a, b = open_synthetic(sets["r0"]), open_synthetic(sets["r1"])
    assert check_replicate_sets("cgan", [a, b], 3) == [
        "synthetic set cgan: the settings of its replicates' runs were not checked (run-0, run-1 not found)"
    ]
    for change, expected in (
        ({"plugin": "diffusion"}, "in plugin: 'fake' vs 'diffusion'"),
        ({"options": {"guidance": 2}}, "in options"),
        ({"data": {**b.provenance["data"], "fingerprint": "e" * 64}}, "other training data"),
    ):
        other = replace(b, provenance={**b.provenance, **change})
        with pytest.raises(UserError, match=expected):
            check_replicate_sets("cgan", [a, other], 3)
