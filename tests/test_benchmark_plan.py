"""The benchmark's plan before any training (issue 34): `--plan` prints it and trains nothing;
a benchmark whose every verdict is out of reach stops before training unless --force; a
difference from the reference is reported only for the classes an arm changes."""

from __future__ import annotations

import csv
import json
import math
import time

import pytest
from cli_helpers import run_main as _cli
from gen_helpers import tiny_run

from cxraug.benchmark.forecast import detectable_auroc_difference, hanley_mcneil_se
from cxraug.cli import main

CHEAP = ["--set", "model=tiny", "--set", "steps=3", "--set", "evaluations=1", "--set", "bootstrap_draws=100",
         "--set", "plots=false", "--arms", "real,cgan"]  # fmt: skip


@pytest.fixture(scope="module")
def hernia(phantom32, tmp_path_factory):
    """20 synthetic Hernia images from a 2-step cgan."""
    root = tmp_path_factory.mktemp("plan")
    run = tiny_run("cgan", phantom32, root / "runs", steps=2)
    with pytest.raises(SystemExit) as e:
        main(["synth", "--run", str(run), "--class", "Hernia", "-n", "20", "--out", str(root / "hernia")])
    assert e.value.code == 0
    return root / "hernia"


def _test_counts(phantom32, name: str) -> tuple[int, int, int]:
    from cxraug.classify.trainset import split_patients
    from cxraug.data.prepared import open_prepared

    data = open_prepared(phantom32)
    labels = data.labels("test")
    c = data.classes.index(name)
    pos = labels == c
    return int(pos.sum()), int((~pos).sum()), len(set(split_patients(data, "test")[pos].astype(str)))


def test_hanley_mcneil_against_a_hand_computed_value():
    # A = 0.8, 50 positives, 50 negatives: Q1 = 0.8/1.2, Q2 = 1.28/1.8,
    # var = (0.16 + 49 (Q1 - 0.64) + 49 (Q2 - 0.64)) / 2500 = 0.0019804
    assert hanley_mcneil_se(0.8, 50, 50) == pytest.approx(math.sqrt(0.0019804), rel=1e-4)
    assert detectable_auroc_difference(50, 50) == pytest.approx(2.8016 * math.sqrt(0.0019804), rel=1e-3)
    assert math.isnan(hanley_mcneil_se(0.8, 0, 50))
    # fewer positives: a larger detectable difference
    assert detectable_auroc_difference(5, 500) > detectable_auroc_difference(50, 500)


def test_plan_alone_prints_in_seconds_and_trains_nothing(phantom32, hernia, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CXRAUG_THREADS", "1")
    out = tmp_path / "bench"
    argv = ["benchmark", "--data", str(phantom32), "--synthetic", f"cgan={hernia}", "--out", str(out), *CHEAP,
            "--set", "rare_classes=[Hernia,Edema]", "--set", "min_test_patients=1", "--seeds", "3", "--plan"]  # fmt: skip
    t0 = time.perf_counter()
    code, printed, err = _cli(argv, capsys)
    assert code == 0, err
    assert time.perf_counter() - t0 < 60
    assert not out.exists()  # nothing written, nothing trained
    n_pos, n_neg, n_pat = _test_counts(phantom32, "Hernia")
    text = " ".join(printed.split())
    assert "rare classes: Edema, Hernia (chosen with option rare_classes)" in text
    assert "cgan adds synthetic images: 20 Hernia" in text
    images, patients = f"{n_pos} image{'s' * (n_pos != 1)}", f"{n_pat} patient{'s' * (n_pat != 1)}"
    assert f"test: {images} of {patients}, {n_neg} negatives" in text
    assert f"detectable ΔAUROC about {detectable_auroc_difference(n_pos, n_neg):.3f}; verdict reachable" in text
    assert "Edema" in text and "no verdict possible: no synthetic arm adds images of it" in text
    # arms real, cgan, and cgan's copy and noise controls, x 3 seeds
    assert "runs: 12 (4 arms x 3 seeds), 12 to train, 3 steps of batch 64" in text
    assert "estimated time:" in text and "s a step measured over 3 steps on cpu" in text


def test_plan_names_the_synthesized_class_the_rare_rule_leaves_out(phantom32, hernia, tmp_path, capsys):
    argv = ["benchmark", "--data", str(phantom32), "--synthetic", f"cgan={hernia}", "--out", str(tmp_path / "b"),
            *CHEAP, "--set", "rare_classes=[Edema]", "--plan"]  # fmt: skip
    code, printed, err = _cli(argv, capsys)
    assert code == 0, err
    text = " ".join(printed.split())
    assert "note: cgan adds images of Hernia, not rare by that rule" in text
    assert "--set rare_classes=[Edema,Hernia]" in text
    assert "this benchmark would stop here: no rare class can get a verdict" in text


def test_all_unreachable_stops_before_training_unless_forced(phantom32, hernia, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CXRAUG_THREADS", "1")
    out = tmp_path / "bench"
    argv = ["benchmark", "--data", str(phantom32), "--synthetic", f"cgan={hernia}", "--out", str(out), *CHEAP,
            "--set", "rare_classes=[Hernia,Edema]", "--set", "min_test_patients=1", "--seeds", "2"]  # fmt: skip
    code, printed, err = _cli(argv, capsys)
    assert code == 2
    # stderr: the warning about the 8 Hernia training images (cxraug.api), then the error's one line;
    # the plan came first, on stdout
    *warnings, last = err.strip().splitlines()
    assert "no rare class can get a verdict" in last and "2 seeds, 3 needed" in last and "--force" in last
    assert len(warnings) == 1 and warnings[0].startswith("warning: --synthetic cgan: the generator saw fewer than 10")
    assert "plan of the benchmark" in printed
    assert not (out / "runs").exists() and not (out / "benchmark.json").exists()

    code, printed, err = _cli([*argv, "--force"], capsys)
    assert code == 0, err
    assert "8 runs trained, 0 reused" in printed
    # Δ only where the arm changes the class: cgan (and its controls) add Hernia only.
    with open(out / "verdicts.csv") as f:
        rows = [r for r in csv.DictReader(f) if r["family"] == "exploratory"]
    pairs = {(r["arm"], r["class"]) for r in rows}
    assert ("cgan", "Hernia") in pairs and ("cgan", "Edema") not in pairs
    assert ("copy", "Edema") not in pairs and ("noise", "Edema") not in pairs
    summary = (out / "summary.md").read_text()
    edema = summary[summary.index("### Edema") :]
    assert "not changed by this arm" in edema.split("###")[1]
    results = json.loads((out / "results.json").read_text())
    by = {(r["arm"], r["class"]): r["diff"] for r in results["per_class_summary"]}
    assert by[("cgan", "Edema")] == {} and by[("cgan", "Hernia")]
    # cgan changes a rare class (Hernia): its rare averages keep their differences
    assert "rare_auroc" in results["paired_differences"]["cgan"]


def test_an_arm_that_changes_no_rare_class_has_no_rare_difference(phantom32, hernia, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CXRAUG_THREADS", "1")
    monkeypatch.setenv("COLUMNS", "200")
    out = tmp_path / "bench"
    argv = ["benchmark", "--data", str(phantom32), "--synthetic", f"cgan={hernia}", "--out", str(out), *CHEAP,
            "--set", "rare_classes=[Edema]", "--seeds", "1", "--force"]  # fmt: skip
    code, printed, err = _cli(argv, capsys)
    assert code == 0, err
    assert "not changed by this arm" in printed  # the terminal's Δ rare AUROC cell of cgan
    results = json.loads((out / "results.json").read_text())
    assert "rare_auroc" not in results["paired_differences"]["cgan"]
    assert "macro_auroc" in results["paired_differences"]["cgan"]  # the whole model did change
    assert not [e for e in results["exploratory"] if e["arm"] == "cgan"]


def test_api_benchmark_stops_before_training_unless_forced(phantom32, hernia, tmp_path, monkeypatch):
    """The same gate from Python: the plan goes to ``say``, then a UserError before anything is
    trained; ``force=True`` trains; ``plan_only=True`` returns the plan alone."""
    from cxraug import api
    from cxraug.errors import UserError

    monkeypatch.setenv("CXRAUG_THREADS", "1")
    out, warned, said = tmp_path / "bench", [], []
    sets = {"model": "tiny", "steps": 3, "evaluations": 1, "bootstrap_draws": 100, "plots": False,
            "rare_classes": "[Hernia,Edema]", "min_test_patients": 1}  # fmt: skip
    options = dict(synthetic={"cgan": hernia}, arms=["real", "cgan"], seeds=1, sets=sets, warn=warned.append)

    planned = api.benchmark(phantom32, out=out, plan_only=True, say=said.append, **options)
    assert planned.report is None and planned.plan is not None and planned.plan.pending == 4
    assert "1 seed, 3 needed" in planned.plan.unreachable()
    assert said[0] == "plan of the benchmark on phantom32:" and said[-1].startswith("this benchmark would stop here")
    assert not out.exists()

    said.clear()
    with pytest.raises(UserError, match=r"no rare class can get a verdict .*: nothing trained; pass --force"):
        api.benchmark(phantom32, out=out, say=said.append, **options)
    assert said[0] == "plan of the benchmark on phantom32:"  # said before it stopped
    assert not (out / "runs").exists() and not (out / "benchmark.json").exists()

    done = api.benchmark(phantom32, out=out, force=True, **options)  # no say: the plan is on the result
    assert done.report is not None and done.report.trained == 4
    assert done.plan is not None and done.plan.pending == 4 and done.plan.unreachable()
    assert warned and all("fewer than 10 training images of Hernia" in w for w in warned)
