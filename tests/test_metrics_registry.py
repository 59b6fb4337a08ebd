"""A metric is defined in one place: a made-up one, added to the registry alone, shows up in
`cxraug score`'s table and scores.csv and in `cxraug compare`'s CSV, JSON and page, with its
bootstrap interval, its paired differences and its direction."""

from __future__ import annotations

import csv
import json
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import pytest
from compare_helpers import RecordingProjection, copy_run
from gen_helpers import tiny_run
from typer.testing import CliRunner

from cxraug.cli import app
from cxraug.data.prepared import open_prepared
from cxraug.metrics import registry
from cxraug.metrics.registry import Metric, MetricOptions, Output


def _mean_shift(real: np.ndarray, fake: np.ndarray, o: MetricOptions) -> dict[str, float]:
    return {"mean_shift": float(np.linalg.norm(real.astype(np.float64).mean(0) - fake.astype(np.float64).mean(0)))}


def _mean_shift_drawn(g: Any, ur: Any, wr: Any, uf: Any, wf: Any, o: MetricOptions) -> dict[str, float]:
    """The same on a bootstrap draw, from the Gram matrices: |mean_r - mean_f|^2 with weights."""
    m, k = wr.sum(), wf.sum()
    sq = (
        wr @ g.g_rr[ur][:, ur] @ wr / m**2
        + wf @ g.g_ff[uf][:, uf] @ wf / k**2
        - 2 * wr @ g.g_rf[ur][:, uf] @ wf / (m * k)
    )
    return {"mean_shift": float(sq.clamp(min=0).sqrt())}


SHIFT = Metric(
    "meanshift",
    "distance between the feature means (a test's made-up metric)",
    (Output("mean_shift", "mean shift", 4, drop=1, better="lower", bounds=(0.0, np.inf), interval=True),),
    _mean_shift,
    resample=_mean_shift_drawn,
)


@pytest.fixture
def with_shift(monkeypatch: pytest.MonkeyPatch, phantom32: Path) -> RecordingProjection:
    """The made-up metric registered (the one place), and a cheap stand-in for Inception."""
    from cxraug.metrics import features, inception

    monkeypatch.setattr(registry, "METRICS", MappingProxyType({**registry.METRICS, SHIFT.name: SHIFT}))
    ex = RecordingProjection(open_prepared(phantom32).size)
    monkeypatch.setattr(inception, "locate_inception_weights", lambda path=None: "test-weights")
    monkeypatch.setattr(features, "load_feature_extractor", lambda weights=None, device=None: ex)
    return ex


def _ok(args: list[str]) -> str:
    res = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    assert res.exit_code == 0, (res.output, res.exception)
    return res.output


def test_a_metric_added_to_the_registry_is_scored_and_compared(
    with_shift: RecordingProjection, phantom32: Path, tmp_path: Path
) -> None:
    run = tiny_run("cgan", phantom32, tmp_path / "runs", steps=2, checkpoint_every=2)
    other = copy_run(run, tmp_path / "runs" / "copy")
    common = ["--classes", "No Finding", "--n", "24", "--min-images", "10", "--kid-subsets", "5", "--device", "cpu"]
    common += ["--metrics", "fid,meanshift", "--no-cache"]

    table = _ok(["score", "--run", str(run), *common, "--out", str(tmp_path / "score")])
    assert "mean shift" in table  # its column in the terminal table, headed by its label
    with (tmp_path / "score" / "scores.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [r["class"] for r in rows] == ["No Finding", "all"]
    assert float(rows[0]["mean_shift"]) > 0 and f"{float(rows[0]['mean_shift']):.4f}" in table
    assert json.loads((tmp_path / "score" / "scores.json").read_text())["metrics"] == ["fid", "meanshift"]

    out = tmp_path / "compare"
    _ok(["compare", str(run), str(other), *common, "--bootstrap", "20", "--speed-images", "8", "--out", str(out)])
    with (out / "compare.csv").open() as f:
        reader = csv.DictReader(f)
        header, rows = list(reader.fieldnames or []), list(reader)
    i = header.index("mean_shift")
    assert header[i + 1 : i + 3] == ["mean_shift_low", "mean_shift_high"]  # its interval, beside it
    for r in rows:
        assert float(r["mean_shift_low"]) <= float(r["mean_shift"]) <= float(r["mean_shift_high"])
        assert float(r["mean_shift_low"]) >= 0  # clipped to its bounds
    res = json.loads((out / "compare.json").read_text())
    diffs = [d for d in res["differences"] if d["metric"] == "mean_shift"]
    assert {d["class"] for d in diffs} == {"No Finding", "all"}
    assert all(d["diff"] == 0 and d["better"] == "no difference" for d in diffs)  # a run and its copy
    assert "mean shift" in (out / "compare.md").read_text()
    # The bootstrap's identity draw is the metric itself: one definition, two ways of computing it.
    from cxraug.compare import bootstrap as bs

    real, fake = np.random.default_rng(0).standard_normal((2, 40, 8)).astype(np.float32)
    whole = bs.resample(real, {"a": fake}, ["meanshift"], bs.BootstrapConfig(resamples=2)).point["a"]
    assert whole["mean_shift"] == pytest.approx(_mean_shift(real, fake, MetricOptions())["mean_shift"], rel=1e-9)


def test_the_metric_compare_ranks_by_is_the_registry_s(monkeypatch: pytest.MonkeyPatch) -> None:
    """compare's summary leads with the computed output of lowest ``lead`` rank (FD_cxr before
    FID); a metric given a rank in the registry alone takes the lead."""
    assert registry.lead_output(None) == "fid" and registry.lead_output(["fid", "fd_cxr"]) == "fd_cxr"
    assert registry.lead_output(["kid", "pr"]) == "kid"  # no ranked output: the first with an interval
    leading = replace(SHIFT, outputs=(replace(SHIFT.outputs[0], lead=1),))
    monkeypatch.setattr(registry, "METRICS", MappingProxyType({**registry.METRICS, leading.name: leading}))
    assert registry.lead_output(["fid", "meanshift"]) == "mean_shift"
