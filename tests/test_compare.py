"""`cxraug compare` on tiny runs of both built-in plugins and the third-party example, with a
cheap stand-in for Inception: one real side for every run, identical runs give identical
numbers, a mismatched dataset is refused, outputs are written whole or not at all."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from compare_helpers import RecordingProjection, copy_run, retarget_data
from gen_helpers import tiny_run
from typer.testing import CliRunner

from cxraug.classes import file_stem
from cxraug.cli import app
from cxraug.compare.bootstrap import BootstrapConfig
from cxraug.compare.core import CompareConfig, compare
from cxraug.data.prepared import open_prepared
from cxraug.metrics.score import ScoreConfig

runner = CliRunner()
CLASSES = ["No Finding", "Infiltration"]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory):
    """The third-party example plugin, installed as pip would (entry point included)."""
    from test_registry import install_example

    path = tmp_path_factory.mktemp("site")
    install_example(path)
    with pytest.MonkeyPatch.context() as mp:
        mp.syspath_prepend(str(path))
        yield path
    sys.modules.pop("cxraug_classmean", None)


@pytest.fixture(scope="module")
def runs(phantom32: Path, site: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("runs")
    return {p: tiny_run(p, phantom32, root, steps=2, checkpoint_every=2) for p in ("cgan", "diffusion", "classmean")}


@pytest.fixture
def cheap_extractor(monkeypatch: pytest.MonkeyPatch, phantom32: Path) -> RecordingProjection:
    """The CLI with a fast pixel projection instead of the Inception network."""
    from cxraug.metrics import features, inception

    ex = RecordingProjection(open_prepared(phantom32).size)
    monkeypatch.setattr(inception, "locate_inception_weights", lambda path=None: "test-weights")
    monkeypatch.setattr(features, "load_feature_extractor", lambda weights=None, device=None: ex)
    return ex


def _cfg(paths: list[Path], tmp: Path, **kw) -> CompareConfig:
    sc = ScoreConfig(n=24, classes=CLASSES, min_images=10, kid_subsets=5, use_cache=False, batch_size=16)
    kw = {"bootstrap": BootstrapConfig(resamples=12), **kw}
    return CompareConfig(runs=paths, score=sc, speed_images=16, **kw)


def test_three_plugins_share_one_real_side(runs: dict[str, Path], phantom32: Path, tmp_path: Path) -> None:
    ex = RecordingProjection(open_prepared(phantom32).size)
    res = compare(_cfg(list(runs.values()), tmp_path), ex, device="cpu")
    labels = [r["label"] for r in res.runs]
    assert [r["plugin"] for r in res.runs] == ["cgan", "diffusion", "classmean"]
    # The real images of each class were turned into features once, for all three runs.
    for c in CLASSES:
        assert sum(w.startswith(f"real val {c} ") for w in ex.log) == 1, ex.log
        assert sum(w.startswith(f"synthetic {c} ") for w in ex.log) == 4  # 3 runs and the floor
    for lab in labels:
        ctx = res.scores[lab].context
        assert ctx["classes"] == CLASSES and ctx["n_per_class"] == 24 and ctx["seed"] == 0
    rows = {(r["run"], r["class"]): r for r in res.rows}
    assert len(rows) == 3 * 3 and {r["n_real"] for r in res.rows if r["class"] == "No Finding"} == {15}
    ok = rows[(labels[0], "No Finding")]
    assert ok["status"] == "ok" and ok["fid_low"] <= ok["fid_high"] and "coverage_high" in ok
    assert rows[(labels[0], "Infiltration")]["status"].startswith("too few")  # 3 real images
    # Cost: read from metrics.jsonl (2 steps of 8 images) and measured now.
    for r in res.runs:
        t, s = r["training"], r["sampling"]
        assert t["step"] == 2 and t["images_seen"] == 16 and t["train_s"] >= 0 and t["source"] == "stop record"
        if t["train_s"] > 0:  # two tiny steps can round to 0.00 s
            assert t["train_img_per_s"] == pytest.approx(16 / t["train_s"], rel=0.01)
        assert r["export_parameters"] > 0 and s["img_per_s"] > 0 and s["images"] == 16 and s["device"] == "cpu"
        assert "CPU" in s["memory_measure"] or s["memory_measure"] == "unavailable"
    # 3 runs -> 3 pairs, 6 outputs, 3 rows (2 classes + all).
    assert len(res.differences) == 3 * 6 * 3
    assert {d["reason"] for d in res.differences if d["class"] == "Infiltration"} == {"too few images"}
    assert sorted(res.samples["No Finding"]) == sorted(labels)
    assert all(len(v) == 8 for v in res.samples["No Finding"].values())


def test_identical_runs_and_a_run_with_itself(runs: dict[str, Path], phantom32: Path, tmp_path: Path) -> None:
    twin = copy_run(runs["cgan"], tmp_path / runs["cgan"].name.replace("cgan", "twin"))
    ex = RecordingProjection(open_prepared(phantom32).size)
    res = compare(_cfg([runs["cgan"], twin, runs["cgan"]], tmp_path), ex, device="cpu")
    labels = [r["label"] for r in res.runs]
    assert labels[2] == labels[0] + "#2"  # the same run twice is told apart
    by = {(r["run"], r["class"]): r for r in res.rows}
    for c in ("No Finding", "all"):
        a, b, again = by[(labels[0], c)], by[(labels[1], c)], by[(labels[2], c)]
        for key in ("fid", "kid", "precision", "recall", "density", "coverage", "fid_low", "fid_high"):
            assert a[key] == b[key] == again[key], key
    done = [d for d in res.differences if d["reason"] == ""]
    assert done and all(d["diff"] == 0 and d["low"] == 0 == d["high"] and not d["excludes_zero"] for d in done)
    assert {d["better"] for d in done if d["metric"] != "density"} == {"no difference"}


def test_a_mismatched_dataset_is_refused(
    runs: dict[str, Path], phantom32: Path, tmp_path: Path, cheap_extractor
) -> None:
    other = copy_run(runs["classmean"], tmp_path / "00009-classmean-other")
    retarget_data(other, "0" * 64)
    base = ["compare", str(runs["cgan"]), str(other), "--n", "24", "--classes", "No Finding", "--min-images", "10"]
    base += ["--bootstrap", "4", "--speed-images", "8", "--no-cache", "--device", "cpu"]
    res = runner.invoke(app, [*base, "--out", str(tmp_path / "x")])
    err = res.stderr.strip()
    assert res.exit_code == 2 and len(err.splitlines()) == 1, res.output
    assert "trained on different prepared datasets" in err and "--allow-different-data" in err
    res = runner.invoke(app, [*base, "--data", str(phantom32), "--out", str(tmp_path / "x")])
    assert res.exit_code == 2 and "--allow-different-data" in res.stderr and not (tmp_path / "x").exists()
    # Runs that agree with each other, compared on a dataset neither was trained on.
    both = ["compare", str(other), str(other), *base[3:], "--data", str(phantom32), "--out", str(tmp_path / "x")]
    res = runner.invoke(app, both)
    assert res.exit_code == 2 and "is not the dataset" in res.stderr and not (tmp_path / "x").exists()
    res = runner.invoke(app, [*base, "--data", str(phantom32), "--allow-different-data", "--out", str(tmp_path / "y")])
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "y" / "compare.json").read_text())["allow_different_data"] is True


def test_cli_outputs_atomic_and_narrow(runs: dict[str, Path], tmp_path: Path, cheap_extractor, monkeypatch) -> None:
    from cxraug.compare import report

    out = tmp_path / "cmp"
    args = ["compare", str(runs["cgan"]), str(runs["diffusion"]), "--n", "24", "--classes", "No Finding",
            "--min-images", "10", "--bootstrap", "6", "--speed-images", "8", "--cache-dir", str(tmp_path / "c"),
            "--kid-subsets", "5", "--device", "cpu", "--out", str(out)]  # fmt: skip
    res = runner.invoke(app, args, env={"COLUMNS": "80"})
    assert res.exit_code == 0, (res.output, res.exception)
    assert max(len(line) for line in res.stdout.splitlines()) <= 80 and "…" not in res.stdout
    assert "cxraug compare" in res.stdout and "NOT real data" in res.stdout and "runs x classes" in res.stderr
    names = {p.name for p in out.iterdir()}
    assert {"compare.json", "compare.csv", "compare.md", "compare.html", "quality_vs_cost.png"} <= names
    assert f"samples_{file_stem('No Finding')}.png" in names
    doc = json.loads((out / "compare.json").read_text())
    assert doc["kind"] == "compare" and len(doc["runs"]) == 2 and doc["bootstrap"]["resamples"] == 6
    assert set(doc["real_features_sha256"]) == {"No Finding"}
    md = (out / "compare.md").read_text()
    assert "## Paired differences" in md and "No Finding:" in md and "![" in md
    csv_lines = (out / "compare.csv").read_text().splitlines()
    assert len(csv_lines) == 1 + 2 * 2 and csv_lines[0].startswith("run,class,")
    # An existing folder is refused before any work; a failure while writing leaves nothing.
    again = runner.invoke(app, args)
    assert again.exit_code == 2 and "already exists" in again.stderr
    monkeypatch.setattr(report, "markdown", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("disk")))
    broken = runner.invoke(app, [*args[:-1], str(tmp_path / "broken")])
    assert broken.exit_code != 0 and not (tmp_path / "broken").exists()
    assert not list(tmp_path.glob(".broken.partial"))


def test_user_errors(runs: dict[str, Path], tmp_path: Path, cheap_extractor) -> None:
    def error(args: list[str], expect: str) -> None:
        res = runner.invoke(app, ["compare", *args])
        assert res.exit_code == 2 and expect in res.stderr, res.output

    error([str(runs["cgan"])], "at least two runs")
    error([str(runs["cgan"]), str(runs["cgan"]), "--bootstrap", "1"], "--bootstrap must be 0")
    error([str(runs["cgan"]), str(runs["cgan"]), "--split", "train"], "compare on val or test")
    error([str(runs["cgan"]), str(tmp_path / "nope"), "--out", str(tmp_path / "o")], "does not exist")
    error([str(runs["cgan"]), str(runs["cgan"]), "--set", "sampler=ddim"], "has the sampling option(s) sampler")


def test_sampling_options_go_to_the_runs_whose_plugin_has_them(runs: dict[str, Path], tmp_path: Path) -> None:
    from cxraug.compare.core import load_runs
    from cxraug.errors import UserError

    cgan, diffusion = load_runs([runs["cgan"], runs["diffusion"]], "cpu", {"guidance": 2.0, "steps": 3})
    assert (diffusion.options.guidance, diffusion.options.steps) == (2.0, 3)
    assert "guidance" not in type(cgan.options).model_fields and cgan.options == cgan.generator.SampleOptions()
    with pytest.raises(UserError, match=r"no compared run's plugin .* has the sampling option"):
        load_runs([runs["cgan"], runs["cgan"]], "cpu", {"guidance": 2.0})
    with pytest.raises(UserError, match="guidance"):  # the plugin's own validation still applies
        load_runs([runs["cgan"], runs["diffusion"]], "cpu", {"guidance": -1.0})


def test_benchmark_deltas_matched_through_provenance(runs: dict[str, Path], tmp_path: Path) -> None:
    from cxraug.compare.core import load_runs
    from cxraug.compare.downstream import benchmark_deltas

    entries = load_runs([runs["cgan"], runs["diffusion"]], "cpu")
    syn = tmp_path / "syn-cgan"
    syn.mkdir()
    (syn / "provenance.json").write_text(json.dumps({"run": str(runs["cgan"].resolve()), "step": 2}))
    stat = {"mean": 0.05, "low": -0.01, "high": 0.11, "p_adjusted": 0.4, "reason": ""}
    results = {
        "config": {"synthetic": {"cgan": "syn-cgan", "lost": str(tmp_path / "gone")}},
        "reference": "real",
        "arms": [{"name": "real", "synthetic": None}, {"name": "cgan", "synthetic": "cgan"}],
        "per_class_summary": [
            {"arm": "cgan", "class": "Hernia", "diff": {"auroc": stat, "recall": stat, "f1": stat}},
            {"arm": "real", "class": "Hernia", "diff": {}},
        ],
    }
    bench = tmp_path / "bench"
    bench.mkdir()
    (bench / "results.json").write_text(json.dumps(results))
    rows, notes = benchmark_deltas(bench, entries)
    assert [(r["run"], r["arm"], r["class"], r["metric"]) for r in rows] == [
        (entries[0].label, "cgan", "Hernia", m) for m in ("auroc", "recall", "f1")
    ]
    assert rows[0]["diff"] == 0.05 and rows[0]["low"] == -0.01 and rows[0]["reference"] == "real"
    assert any("lost" in n and "not found" in n for n in notes)


def test_cost_says_when_training_minutes_are_cpu_minutes(tmp_path: Path) -> None:
    """A clock=cpu run's minutes are CPU-minutes (up to the thread count apart from wall ones):
    the cost table marks them, the CSV has the clock; older runs counted wall seconds."""
    from cxraug.compare.cost import training_clock
    from cxraug.compare.report import train_minutes

    for clock, want in (("cpu", "cpu"), ("wall", "wall"), (None, "wall")):
        run = tmp_path / str(clock)
        run.mkdir()
        (run / "config.json").write_text(json.dumps({"train": {"clock": clock} if clock else {}}))
        assert training_clock(run) == want
    assert training_clock(tmp_path / "gone") == "wall"
    assert train_minutes({"train_min": 30.0, "clock": "cpu"}) == "30.00 cpu"
    assert train_minutes({"train_min": 30.0, "clock": "wall"}) == "30.00"
    assert train_minutes({"train_min": None, "clock": "cpu"}) == "-"


def test_resumed_run_cost_is_cumulative(phantom32: Path, tmp_path: Path, monkeypatch) -> None:
    """The clock behind the cost columns: a run resumed to 4 steps reports 4 steps' time."""
    import time

    from cxraug_cgan.plugin import CGAN

    from cxraug.compare.cost import training_cost
    from cxraug.train import spec_from_run, train

    real_step = CGAN.train_step

    def slow_step(self, x, y, acc):  # 0.1 s per step, so the seconds are there to count
        time.sleep(0.1)
        return real_step(self, x, y, acc)

    import cxraug.train as train_mod

    real_page = train_mod.write_run_page

    def slow_page(run: Path) -> None:  # 0.2 s spent after the checkpoint is written
        time.sleep(0.2)
        real_page(run)

    monkeypatch.setattr(CGAN, "train_step", slow_step)
    monkeypatch.setattr(train_mod, "write_run_page", slow_page)
    run = tiny_run("cgan", phantom32, tmp_path, steps=2, checkpoint_every=2)
    first = training_cost(run, 2)
    train(run, spec_from_run(run, {"steps": 4}), resume=True)
    total = training_cost(run, 4)
    assert first["images_seen"] == 16 and total["images_seen"] == 32
    assert first["train_s"] >= 0.2 and total["train_s"] >= first["train_s"] + 0.2  # not restarted at 0
    # the earlier session's work after its checkpoint is kept, and the resumed save adds its own 0.2 s
    assert total["other_s"] >= first["other_s"] + 0.2
    assert total["train_img_per_s"] == pytest.approx(32 / total["train_s"], rel=0.01)


def test_a_plan_that_cannot_fit_in_memory_is_refused_before_sampling(
    runs: dict[str, Path], phantom32: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cxraug import resources
    from cxraug.compare import core
    from cxraug.errors import UserError

    sampled: list[int] = []
    monkeypatch.setattr(core, "measure_sampling", lambda *a, **k: sampled.append(1))
    monkeypatch.setattr(resources, "available_memory", lambda: 2**20)
    cfg = _cfg([runs["cgan"], runs["diffusion"]], tmp_path)
    cfg.score.n = 50_000
    with pytest.raises(
        UserError,
        match=r"scoring 50,000 synthetic images per class x 2 classes x 2 runs and the real-vs-real floor needs",
    ):
        compare(cfg, RecordingProjection(open_prepared(phantom32).size), device="cpu")
    assert sampled == []


def test_the_floor_is_beside_every_fid_and_kid_and_the_lead_is_fd_cxr(
    runs: dict[str, Path], phantom32: Path, tmp_path: Path
) -> None:
    """The real-vs-real floor (training images scored as a run is, same n and resamples) sits
    beside FID, KID, FD_cxr and KID_cxr; FD_cxr, KID_cxr and label fidelity get intervals;
    with the reference classifier the summary ranks by FD_cxr and says so."""
    from cxraug.compare import report
    from cxraug.compare.rows import FLOOR
    from cxraug.metrics.reference import ReferenceConfig
    from cxraug.metrics.score import real_side, score_source
    from cxraug.metrics.sources import train_images_source

    ex = RecordingProjection(open_prepared(phantom32).size)
    cfg = _cfg([runs["cgan"], runs["diffusion"]], tmp_path)
    cfg.score.metrics = ["fid", "kid", "fd_cxr", "fidelity"]
    cfg.score.classes, cfg.score.use_cache, cfg.score.cache_dir = ["No Finding"], True, tmp_path / "cache"
    cfg.score.reference = ReferenceConfig(model="tiny", epochs=2, batch_size=16, lr=3e-3)
    res = compare(cfg, ex, device="cpu")
    assert res.context["lead_metric"] == "fd_cxr" and "TRAINING images" in res.context["floor"]
    floor = {r["class"]: r for r in res.floor}
    assert set(floor) == {"No Finding", "all"} and all(r["run"] == FLOOR for r in res.floor)
    # The floor is the training images' own score against the same real side, at the same n.
    data = open_prepared(phantom32)
    direct = score_source(real_side(data, ["No Finding"], cfg.score, ex), train_images_source(data), cfg.score)
    assert floor["No Finding"]["fid"] == pytest.approx(direct.rows[0]["fid"])
    assert floor["No Finding"]["n_fake"] == min(24, int((data.labels("train") == 0).sum()))
    for r in res.rows:
        for o in ("fid", "kid", "fd_cxr", "kid_cxr"):
            assert r[f"{o}_floor"] == floor[r["class"]][o]
            assert r[f"{o}_minus_floor"] == pytest.approx(r[o] - r[f"{o}_floor"])
            assert r[f"{o}_minus_floor_low"] <= r[f"{o}_minus_floor"] <= r[f"{o}_minus_floor_high"]
        for o in ("fd_cxr", "kid_cxr", "precision_cxr", "fidelity"):
            assert r[f"{o}_low"] <= r[o] <= r[f"{o}_high"], o
    for r in res.floor:
        assert all(0 <= r[f"{o}_low"] <= r[f"{o}_high"] <= 1 for o in ("precision_cxr", "recall_cxr", "fidelity"))
    assert {d["metric"] for d in res.differences} >= {"fd_cxr", "fidelity"}
    md = report.markdown(res, {})
    assert "## Verdicts (FD_cxr)" in md and "Ranked by FD_cxr" in md and "| FID floor | FID - floor |" in md
    assert "## Real-vs-real floor per class" in md and "above the floor by" in md
    # Without the reference classifier the lead is FID, and the page says why.
    plain = compare(_cfg([runs["cgan"], runs["diffusion"]], tmp_path), ex, device="cpu")
    assert plain.context["lead_metric"] == "fid" and "Ranked by FID" in report.markdown(plain, {})
    # Without resamples the floor is still beside every value, without intervals.
    bare = _cfg([runs["cgan"], runs["diffusion"]], tmp_path, bootstrap=BootstrapConfig(resamples=0))
    for r in compare(bare, ex, device="cpu").rows:
        if r["status"] == "ok":
            assert r["fid_minus_floor"] == pytest.approx(r["fid"] - r["fid_floor"]) and "fid_minus_floor_low" not in r


def test_a_floor_of_fewer_images_than_n_gets_no_fid_difference(
    runs: dict[str, Path], phantom32: Path, tmp_path: Path
) -> None:
    """A class with fewer training images than n (a rare class) gives a floor of fewer images than
    the run. FID falls as n grows, so run - floor would mix two sample sizes: the floor is shown,
    FID - floor is not given and the verdict line says why; KID, unbiased at any n, keeps its
    difference."""
    from cxraug.compare import report

    data = open_prepared(phantom32)
    n_train = int((data.labels("train") == 0).sum())
    cfg = _cfg([runs["cgan"], runs["diffusion"]], tmp_path)
    cfg.score.classes, cfg.score.n = ["No Finding"], n_train + 8
    res = compare(cfg, RecordingProjection(data.size), device="cpu")
    floor = {r["class"]: r for r in res.floor}
    assert floor["No Finding"]["n_fake"] == n_train
    for r in res.rows:
        assert r["n_fake"] == n_train + 8 and r["fid_floor"] == floor[r["class"]]["fid"]
        assert r.get("fid_minus_floor") is None and "fid_minus_floor_low" not in r
        assert r["kid_minus_floor"] == pytest.approx(r["kid"] - r["kid_floor"])
    md = report.markdown(res, {})
    assert f"from only {n_train} training images against the run's {n_train + 8}: not comparable" in md
    assert "above the floor by" not in md


def _width(row: dict, o: str = "fid") -> float:
    return row[f"{o}_high"] - row[f"{o}_low"]


def _perturbed(run: Path) -> Path:
    """The run's exported weights with noise added (its sha256 recorded again): a replicate that
    differs by construction, with the same plugin, settings and data."""
    import hashlib

    import torch
    from safetensors.torch import load_file, save_file

    export = run / "export"
    weights = load_file(export / "weights.safetensors")
    gen = torch.Generator().manual_seed(1)
    noisy = {k: v + 0.3 * v.std() * torch.randn(v.shape, generator=gen) if v.is_floating_point() and v.numel() > 1
             else v for k, v in weights.items()}  # fmt: skip
    save_file(noisy, export / "weights.safetensors")
    meta = json.loads((export / "config.json").read_text())
    meta["weights_sha256"] = hashlib.sha256((export / "weights.safetensors").read_bytes()).hexdigest()
    (export / "config.json").write_text(json.dumps(meta))
    return run


def test_replicated_arms_resample_training_runs(runs: dict[str, Path], phantom32: Path, tmp_path: Path) -> None:
    """Identical replicates leave every number as one run gives it; replicates trained with
    other seeds widen the interval of the arm and of its difference with another arm."""
    from cxraug.compare.replicated import ArmSpec

    cgan, diffusion = runs["cgan"], runs["diffusion"]
    twin = copy_run(cgan, tmp_path / "twin")
    seed1 = _perturbed(copy_run(cgan, tmp_path / "seed1"))  # another trained generator, by construction
    ex = RecordingProjection(open_prepared(phantom32).size)
    one = compare(_cfg([cgan, diffusion], tmp_path), ex, device="cpu")
    same = compare(_cfg([], tmp_path, arms=[ArmSpec("gan", (cgan, twin)), ArmSpec(None, (diffusion,))]), ex, "cpu")
    seeds = compare(_cfg([], tmp_path, arms=[ArmSpec("gan", (cgan, seed1)), ArmSpec(None, (diffusion,))]), ex, "cpu")
    lab, dlab = cgan.name, diffusion.name
    base = {(r["run"], r["class"]): r for r in one.rows}
    for res in (same, seeds):
        assert [r["arm"] for r in res.runs] == ["gan", "gan", dlab]
        assert res.context["arms"]["gan"] == [r["label"] for r in res.runs[:2]]
        assert {r["run"] for r in res.replicates} == {r["label"] for r in res.runs[:2]}
        assert {r["run"] for r in res.rows} == {"gan", dlab}
    got = {(r["run"], r["class"]): r for r in same.rows}
    for c in ("No Finding", "all"):
        for key in ("fid", "fid_low", "fid_high", "kid", "coverage_low", "fid_floor", "fid_minus_floor_high"):
            assert got[("gan", c)][key] == base[(lab, c)][key], key
    diff = {(d["class"], d["metric"]): d for d in same.differences}
    for d in one.differences:
        assert (diff[(d["class"], d["metric"])]["low"], diff[(d["class"], d["metric"])]["high"]) == (
            d["low"],
            d["high"],
        )
    # Replicates that differ: the arm is their mean, and its intervals are wider than one run's.
    wide = {(r["run"], r["class"]): r for r in seeds.rows}
    reps = {r["run"]: r for r in seeds.replicates if r["class"] == "No Finding"}
    fids = [r["fid"] for r in reps.values()]
    assert fids[0] != fids[1] and wide[("gan", "No Finding")]["fid"] == pytest.approx(sum(fids) / 2)
    assert _width(wide[("gan", "No Finding")]) > _width(base[(lab, "No Finding")])
    d_one = next(d for d in one.differences if d["class"] == "No Finding" and d["metric"] == "fid")
    d_rep = next(d for d in seeds.differences if d["class"] == "No Finding" and d["metric"] == "fid")
    assert d_rep["high"] - d_rep["low"] > d_one["high"] - d_one["low"]


def test_arms_on_the_command_line(runs: dict[str, Path], tmp_path: Path, cheap_extractor) -> None:
    import json as _json

    twin = copy_run(runs["cgan"], tmp_path / "twin")
    out = tmp_path / "cmp"
    common = ["--n", "24", "--classes", "No Finding", "--min-images", "10", "--bootstrap", "6", "--speed-images",
              "8", "--cache-dir", str(tmp_path / "c"), "--kid-subsets", "5", "--device", "cpu"]  # fmt: skip
    res = runner.invoke(
        app, ["compare", f"gan={runs['cgan']},{twin}", str(runs["diffusion"]), *common, "--out", str(out)]
    )
    assert res.exit_code == 0, (res.output, res.exception)
    md = (out / "compare.md").read_text()
    assert "## Per replicate" in md and "Arms of replicated runs: gan: 2 runs" in md
    doc = _json.loads((out / "compare.json").read_text())
    assert list(doc["arms"]) == ["gan", runs["diffusion"].name] and len(doc["replicate_rows"]) == 2 * 2
    from cxraug.page import Bullets
    from cxraug.studypage import compare_blocks

    lines = [x for b in compare_blocks(doc, "compare.html") if isinstance(b, Bullets) for x in b.items]
    assert any("is better" in x or "no difference shown" in x for x in lines)  # the study page reads it
    assert any("floor" in x for x in lines)
    assert len((out / "compare.csv").read_text().splitlines()) == 1 + 2 * 2 + 2 * 2  # arms, then replicates

    def refused(arg: str, expect: str) -> None:
        got = runner.invoke(app, ["compare", arg, str(runs["diffusion"]), *common, "--out", str(tmp_path / "x")])
        assert got.exit_code == 2 and expect in got.stderr and len(got.stderr.strip().splitlines()) == 1, got.output

    refused(f"m={runs['cgan']},{runs['diffusion']}", "differs from")
    refused(f"m={runs['cgan']},{runs['diffusion']}", "plugin: 'cgan' vs 'diffusion'")
    changed = copy_run(runs["cgan"], tmp_path / "lr")
    cfg = _json.loads((changed / "config.json").read_text())
    cfg["model"]["lr_g"] = 0.1
    (changed / "config.json").write_text(_json.dumps(cfg))
    refused(f"m={runs['cgan']},{changed}", "setting lr_g: 0.0002 vs 0.1")
    retarget_data(changed, "f" * 64)
    refused(f"m={runs['cgan']},{changed}", "data: ")
    refused("m=", "cannot read 'm='")


def test_arm_syntax(tmp_path: Path) -> None:
    from cxraug.compare.replicated import ArmSpec, arm_labels
    from cxraug.errors import UserError
    from cxraug.replicates import parse_arm

    odd = tmp_path / "a=b,c"
    odd.mkdir()
    assert parse_arm("cgan=r1,r2") == ("cgan", ["r1", "r2"])
    assert parse_arm("r1,r2") == (None, ["r1", "r2"]) and parse_arm("r1") == (None, ["r1"])
    assert parse_arm(str(odd)) == (None, [str(odd)])  # an existing folder is a folder, whatever its name
    for bad in ("cgan=", "r1,,r2", "=r1"):
        with pytest.raises(UserError, match="cannot read"):
            parse_arm(bad)
    specs = [ArmSpec(None, (Path("a"), Path("b"))), ArmSpec(None, (Path("c"),)), ArmSpec("m", (Path("d"),))]
    assert arm_labels(specs, ["a", "b", "c", "d"]) == {"a x2": ["a", "b"], "c": ["c"], "m": ["d"]}
    with pytest.raises(UserError, match="two arms are called 'c'"):
        arm_labels([ArmSpec(None, (Path("c"),)), ArmSpec("c", (Path("e"),))], ["c", "e"])
