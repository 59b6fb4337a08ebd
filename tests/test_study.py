"""`cxraug study` at toy size on the built-in sample: end to end (the ratio chosen on validation
patients only, the test split read only by the chosen arms, the page and its CSV from one
table), a SIGKILL at a random moment then the same command again gives the same numbers as
the straight run (so two runs agree), the page in a headless browser, and every refusal of bad
input in one line with exit code 2 before any work."""

from __future__ import annotations

import csv
import json
import random
import re
from pathlib import Path

import pytest
from killsuite import STUDY, cli_inprocess, digest_study, kill_once, make_study_inputs, study_argv

from cxraug.cli import main


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CXRAUG_THREADS", "1")
        return make_study_inputs(tmp_path_factory.mktemp("study") / "inputs")


def _need_inception() -> None:
    from cxraug.errors import UserError
    from cxraug.metrics.inception import locate_inception_weights

    try:
        locate_inception_weights()  # compare scores with the standard FID network
    except UserError as e:
        pytest.skip(str(e))


@pytest.fixture(scope="module")
def straight(inputs: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, dict, float]:
    import time

    _need_inception()
    w = tmp_path_factory.mktemp("straight")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CXRAUG_THREADS", "1")
        mp.setenv("COLUMNS", "160")
        t0 = time.perf_counter()
        code, text = cli_inprocess(study_argv(inputs, w))
    assert code == 0, text[-3000:]
    return w / "study", text, digest_study(w / "study"), time.perf_counter() - t0


@pytest.mark.slow
def test_study_end_to_end_chooses_on_validation_and_writes_one_page(straight, inputs: Path) -> None:
    out, printed, _, _ = straight
    for f in ("study.html", "study.md", "study.csv", "curve.png", "quality.png", "samples_n0010.png", "study.json"):
        assert (out / f).is_file(), f
    assert printed.strip().splitlines()[-1] == f"open {(out / 'study.html').resolve()}"
    assert "Did synthetic No Finding images help" in printed and "cells made" in printed
    with open(out / "study.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["n"], r["generator"], r["comparison"]) for r in rows] == [
        ("10", g, c) for g in ("cgan", "diffusion") for c in ("copy control", "best baseline")]  # fmt: skip
    # The ratio: chosen per generator on halves of the validation patients, never on test.
    sel = json.loads((out / "n-0010" / "select" / "cell.json").read_text())
    assert set(sel["chosen"]) == {"cgan", "diffusion"} and set(sel["chosen"].values()) <= {"+20", "x1"}
    for g, ratio in sel["chosen"].items():
        scores = sel["validation_auroc"][g]
        assert scores[ratio] == max(scores.values())
        assert {r["ratio"] for r in rows if r["generator"] == g} == {ratio}
    from cxraug.data.prepared import open_prepared

    reduced, chosen_on = (
        open_prepared(out / "n-0010" / "data" / "prepared"),
        open_prepared(out / "n-0010" / "select" / "data"),
    )
    assert chosen_on.patients("test") | chosen_on.patients("val") == reduced.patients("val")
    assert not chosen_on.patients("test") & reduced.patients("test")
    assert reduced.counts("train")["No Finding"] == 10
    # The benchmark at N ran each generator at its chosen ratio only (test read once per chosen cell).
    results = json.loads((out / "n-0010" / "benchmark" / "out" / "results.json").read_text())
    synthetic_arms = {a["name"] for a in results["arms"] if a["kind"] == "synthetic"}
    assert synthetic_arms == {f"{g}@{r}" for g, r in sel["chosen"].items()}
    assert {a["name"] for a in results["arms"]} >= {"real", "copy", "noise"} or any(
        a["name"].startswith("copy") for a in results["arms"]
    )
    # One table model: the Markdown page holds the CSV's numbers.
    md = (out / "study.md").read_text()
    assert md.index("## The answer") < md.index("## Δ AUROC") < md.index("## The generators' quality")
    # One training seed per generator (the toy's default): the page says what its intervals do not cover.
    words = " ".join(md.split())
    assert "the interval covers that one trained generator, not another training run of it" in words
    assert "an interval can exclude zero without a verdict" in words  # which of the two carries the verdict
    for r in rows:
        if r["delta_auroc"]:
            assert f"{float(r['delta_auroc']):+.3f}" in md
    # Every cell records the code that made it, and the page says it was one version.
    codes = {json.loads(p.read_text()).get("code") for p in out.glob("n-*/*/cell.json")}
    assert len(codes) == 1 and None not in codes, codes
    assert f"finished cells was made by cxraug {codes.pop()}" in words
    # Generator replicates trained on the reduced set alone.
    for g in ("cgan", "diffusion"):
        run = next((out / "n-0010" / f"gen-{g}-s0" / "runs").glob("*/config.json"))
        assert Path(json.loads(run.read_text())["data"]["path"]).resolve() == (out / "n-0010/data/prepared").resolve()


@pytest.mark.slow
def test_a_killed_study_resumes_to_the_same_numbers(straight, inputs: Path, tmp_path: Path, monkeypatch) -> None:
    """Also the reproducibility check: a second toy run (killed part way, then rerun) gives the
    straight run's numbers, timings aside."""
    _, _, reference, seconds = straight
    monkeypatch.setenv("CXRAUG_THREADS", "1")
    rng = random.Random("study")
    # The kill lands within a span measured on the straight run; on a machine whose load changes
    # between the two runs the second can finish first, so a trial that killed nothing is
    # repeated with a quarter of the span (never counted as a pass).
    for attempt, span in enumerate((seconds / 2, seconds / 8, seconds / 32)):
        killed = tmp_path / f"killed-{attempt}"
        trial = kill_once(STUDY, inputs, killed, reference, span, rng, cli_inprocess)
        if trial.kill_at_s is not None:
            break
    assert trial.kill_at_s is not None, "the study finished before every kill; nothing was tested"
    assert trial.survived, trial.problems
    # The rerun reused what the killed run had finished.
    done = [json.loads(p.read_text())["status"] for p in (killed / "study").glob("n-*/*/cell.json")]
    assert done and set(done) == {"done"}


@pytest.mark.slow
def test_cells_finished_but_not_recorded_are_redone_to_the_same_numbers(straight, inputs: Path, tmp_path: Path) -> None:
    """A kill between a cell's command finishing and its cell.json saying so leaves finished
    outputs under started cells (synth's finished set used to stop the rerun: synth refuses to
    redo a set without --overwrite); the rerun redoes every such cell to the same numbers."""
    import shutil

    out, _, reference, _ = straight
    shutil.copytree(out, tmp_path / "study")
    cells = sorted((tmp_path / "study").glob("n-*/*/cell.json"))
    assert {c.parent.name for c in cells} >= {"data", "gen-cgan-s0", "synth-cgan-s0", "select", "benchmark", "compare"}
    for cell in cells:
        rec = json.loads(cell.read_text())
        cell.write_text(json.dumps({**rec, "status": "started"}))
    code, text = cli_inprocess(study_argv(inputs, tmp_path))
    assert code == 0, text[-2000:]
    # FID redone in the copy agrees to about 1e-8 relative, not bit for bit (seen on a fresh clone:
    # 288.71186146 vs 288.71186474): numbers compared to 6 significant digits, the rest exactly
    assert _rounded(digest_study(tmp_path / "study")) == _rounded(reference)


def _rounded(v):
    if isinstance(v, dict):
        return {k: _rounded(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_rounded(x) for x in v]
    try:
        return f"{float(v):.6g}" if isinstance(v, str) and "." in v else v
    except ValueError:
        return v


@pytest.mark.slow
def test_study_page_renders_in_a_headless_browser(straight, tmp_path: Path) -> None:
    from test_compare_html import PROBE, _browser, _run_browser

    browser = _browser()
    out = straight[0]
    page = (out / "study.html").read_text()
    assert "http://" not in page and "https://" not in page and "<script" not in page  # self-contained
    probe = tmp_path / "study.html"
    probe.write_text(
        re.sub(r"<meta http-equiv=\"Content-Security-Policy\"[^>]*>", "", page).replace("</body>", PROBE + "</body>")
    )
    dom = _run_browser(browser, tmp_path / "profile", "--virtual-time-budget=10000", "--dump-dom", probe.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    found = re.search(r'<pre id="probe">(.*?)</pre>', dom.stdout, re.S)
    assert found, dom.stdout[-2000:]
    seen = json.loads(found.group(1).replace("&quot;", '"'))
    assert len(seen["images"]) >= 3 and set(seen["images"]) == {"ok"}, seen
    assert seen["tables"] >= 1
    text = " ".join(dom.stdout.split())
    assert text.index("The answer") < text.index("against N")
    for href in re.findall(r'href="([^"]+)"', page):  # relative links that resolve
        assert not href.startswith("/") and (out / href).is_file(), href


# --- the plan, and the same study from Python ---------------------------------------------------------
def test_the_plan_alone_makes_nothing_from_the_cli_or_python(inputs: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    from cxraug import api

    monkeypatch.setenv("COLUMNS", "300")  # a plan's line whole

    out = tmp_path / "s"
    with pytest.raises(SystemExit) as e:
        main([*_base(inputs, out), "--sizes", "10,25", "--seeds", "2", "--ratios", "+20,x1", "--plan"])
    printed = capsys.readouterr().out
    assert e.value.code == 0 and not out.exists(), printed
    assert printed.startswith(f"plan of the study in {out}") and "cells: 16 to make, 0 to continue, 0 done" in printed
    assert "n=25 (25 synthetic images a run): to make: data, gen-cgan-s0" in printed and "estimated" in printed
    assert "none reachable (2 classifier seeds, 3 needed)" in printed  # the benchmarks run anyway (--force)
    lines: list[str] = []
    res = api.study(data=str(inputs / "sample32"), rare="No Finding", sizes=[10, 25], gen_steps=10, seeds=2,
                    ratios=["+20", "x1"], out=str(out), plan_only=True, say=lines.append)  # fmt: skip
    assert not out.exists() and res.plan is not None and not res.complete and res.out == out
    assert lines == res.plan.lines() and [ln for ln in printed.splitlines() if ln.startswith("  n=")] == [
        ln for ln in lines if ln.startswith("  n=")
    ]
    # over the time limit: the plan says so (exit 0); the run itself is refused (exit 2, test below)
    res = api.study(data=inputs / "sample32", rare="No Finding", sizes=[10, 25, 50], gen_steps=2_000_000,
                    out=out, plan_only=True)  # fmt: skip
    assert "over the limit" in res.plan.lines()[-1] and not out.exists()


@pytest.mark.slow
def test_api_study_gives_the_cli_study(straight, inputs: Path, tmp_path: Path) -> None:
    """The same options from Python (a YAML file as str, keywords): every cell of the CLI's study
    is reused as it is (same keys), the plan says so, and the page's numbers are the CLI's."""
    import shutil

    from cxraug import api
    from cxraug.study.page import study_rows

    out = tmp_path / "study"
    shutil.copytree(straight[0], out)
    lines: list[str] = []
    res = api.study(str(inputs / "toy-study.yaml"), data=str(inputs / "sample32"), rare="No Finding", sizes=[10],
                    gen_steps={"cgan": 4, "diffusion": 2}, seeds=2, ratios=["+20", "x1"],
                    bench_sets={"arms": ["real", "cgan", "diffusion"]}, out=out, say=lines.append)  # fmt: skip
    assert res.complete and res.trained == 0 and res.reused > 0 and res.page == out / "study.html"
    assert "  cells: 0 to make, 0 to continue, 8 done" in lines
    assert digest_study(out) == straight[2]
    with open(out / "study.csv", newline="") as f:
        assert len(study_rows(res.config, res.sizes)) == len(list(csv.DictReader(f)))


# --- refusals: one line, exit 2, nothing started ---------------------------------------------------
def _cli(argv: list[str], capsys) -> tuple[int, str]:
    with pytest.raises(SystemExit) as e:
        main(argv)
    return int(e.value.code), capsys.readouterr().err


def _base(inputs: Path, out: Path) -> list[str]:
    return ["study", "--data", str(inputs / "sample32"), "--rare", "No Finding", "--gen-steps", "10", "--out", str(out)]


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        (["--sizes", "10,700"], "only 600 training images"),
        (["--sizes", "10,25,10"], "10 is given twice"),
        (["--sizes", "10", "--generators", "cgan,stylegan9"], "unknown generator"),
        (["--sizes", "10,x"], "whole numbers"),
        (["--sizes", "10", "--time-limit", "5"], "budget once"),
        (["--sizes", "10", "--ratios", "all"], "a study sizes its sets"),
        (["--sizes", "10", "--rare", "Hernia"], "not a class"),
        (["--sizes", "10", "--set", "seeds=5"], "the study sets it"),
        (["--sizes", "10", "--set-gen", "cgan:seed=3"], "the study sets it"),
        (["--sizes", "10", "--set-gen", "diffusion"], "PLUGIN:KEY=VALUE"),
        (["--sizes", "10", "--shard", "2/2"], "--shard"),
        (["--sizes", "10,25,50", "--gen-steps", "2000000"], "over the limit"),
        (["--sizes", "10", "--generators", "cgan"], "give two or more"),
        (["--sizes", "10", "--gen-steps", "cgan=10"], "no steps for diffusion"),
        (["--sizes", "10", "--gen-steps", "0"], "at least 1 step"),
        (["--sizes", "10", "--gen-steps", "cgan=10,diffusion=5,dcgan=3"], "dcgan is not among"),
        (["--sizes", "10", "--set", "epoch=1"], "unknown option 'epoch'"),
        (["--sizes", "10", "--set", "epochs=x"], "'epochs'"),
        (["--sizes", "10", "--set-gen", "cgan:bach_size=32"], "unknown config key 'bach_size'"),
        (["--sizes", "10", "--set-gen", "cgan:batch_size=-3"], "'batch_size'"),
        (["--sizes", "10", "--set-sample", "diffusion:steps=0"], "'steps'"),
        (["--sizes", "10", "--compare-n", "1"], "option --compare-n ('compare_n' in --config): "),
        (["--sizes", "10", "--max-hours", "0"], "option --max-hours ('max_hours' in --config): "),
    ],
)
def test_bad_input_is_one_line_and_exit_2(inputs: Path, tmp_path: Path, capsys, extra: list[str], says: str) -> None:
    argv = _base(inputs, tmp_path / "s")
    if "--gen-steps" in extra:
        i = argv.index("--gen-steps")
        del argv[i : i + 2]
    code, err = _cli(argv + extra, capsys)
    assert code == 2 and says in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "s").exists()  # refused before any work


def test_a_grid_the_disk_cannot_hold_is_refused_unless_forced(
    inputs: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    import shutil
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(10**6, 10**6 - 1000, 1000))
    code, err = _cli([*_base(inputs, tmp_path / "s"), "--sizes", "10"], capsys)
    assert code == 2 and "GB free" in err and "--force" in err and len(err.strip().splitlines()) == 1


def test_a_file_at_out_is_refused_by_the_plan_too(inputs: Path, tmp_path: Path, capsys) -> None:
    (tmp_path / "f").write_text("mine")
    for out in (tmp_path / "f", tmp_path / "f" / "sub"):
        code, err = _cli([*_base(inputs, out), "--sizes", "10", "--plan"], capsys)  # the plan said "to make", exit 0
        assert code == 2 and "is a file" in err and len(err.strip().splitlines()) == 1, err
    assert (tmp_path / "f").read_text() == "mine"


def test_an_out_folder_of_something_else_is_refused(inputs: Path, tmp_path: Path, capsys) -> None:
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "mine.txt").write_text("mine")
    code, err = _cli([*_base(inputs, tmp_path / "s"), "--sizes", "10"], capsys)
    assert code == 2 and "not a study folder" in err and (tmp_path / "s" / "mine.txt").read_text() == "mine"


def test_a_cell_made_with_other_settings_is_refused_never_mixed(tmp_path: Path) -> None:
    from cxraug.errors import UserError
    from cxraug.study.cells import Cell

    Cell(tmp_path / "c", {"stage": "train", "steps": 10}).start()
    assert not Cell(tmp_path / "c", {"stage": "train", "steps": 10}).done()
    with pytest.raises(UserError, match=r"other settings .*steps"):
        Cell(tmp_path / "c", {"stage": "train", "steps": 20}).done()
    Cell(tmp_path / "c", {"stage": "train", "steps": 10}).finish(seconds=1.0)
    assert Cell(tmp_path / "c", {"stage": "train", "steps": 10}).done()


def test_the_config_file_gives_the_same_options(inputs: Path, tmp_path: Path) -> None:
    from cxraug.study.config import build_config

    f = tmp_path / "study.yaml"
    f.write_text(
        f"data: {inputs / 'sample32'}\nrare: No Finding\nsizes: [50, 10]\ngen_steps: {{cgan: 100, diffusion: 10}}\n"
        "seeds: 5\ngen_seeds: 2\nratios: [fill, x2]\nbench_sets: {epochs: 3}\n"
    )
    cfg = build_config(f, {"bench_sets": {"model": "tiny"}})
    assert cfg.sizes == [10, 50] and cfg.seeds == [0, 1, 2, 3, 4] and cfg.gen_seeds == [0, 1]
    assert cfg.steps_of("diffusion") == 10 and cfg.bench_sets == {"epochs": 3, "model": "tiny"}
    assert cfg.budget_text() == "cgan 100 steps, diffusion 10 steps"


def test_the_published_full_runs_config_plans_on_the_built_in_sample(inputs: Path, tmp_path: Path) -> None:
    """docs/examples/study-pmnist.yaml is the command of docs/results/study-pmnist.md: it must
    stay a valid study of the built-in sample (every size within the class, 75 cells)."""
    from cxraug import api

    example = Path(__file__).resolve().parents[1] / "docs" / "examples" / "study-pmnist.yaml"
    res = api.study(example, data=inputs / "sample32", out=tmp_path / "s", plan_only=True)
    assert res.plan is not None and not (tmp_path / "s").exists()
    lines = res.plan.lines()
    assert any("cells: 75 to make, 0 to continue, 0 done" in ln for ln in lines), lines
    assert any("10 CPU-min per run" in ln and "0, 1, 2" in ln for ln in lines), lines


def test_processes_share_the_sizes_out_and_each_cell_runs_as_one_process(monkeypatch) -> None:
    from cxraug.errors import UserError
    from cxraug.study.launch import child_env, shard_of

    sizes = [10, 25, 50, 100, 200]
    for k in (1, 2, 3, 5, 7):
        dealt = [n for i in range(k) for n in sizes[shard_of(f"{i}/{k}")[0] :: k]]
        assert sorted(dealt) == sizes  # every size once, whatever the number of processes
    for bad in ("2/2", "a/b", "1", "-1/2", "0/0"):
        with pytest.raises(UserError, match="--shard"):
            shard_of(bad)
    for k, v in {"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2",
                 "MASTER_ADDR": "h", "MASTER_PORT": "1", "CUDA_VISIBLE_DEVICES": "4,5"}.items():  # fmt: skip
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("CXRAUG_THREADS", raising=False)
    assert shard_of(None) == (3, 4)  # the launcher's rank and world size
    env = child_env()
    assert not {"RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"} & set(env)
    assert env["CUDA_VISIBLE_DEVICES"] == "5" and int(env["CXRAUG_THREADS"]) >= 1


def test_the_estimate_says_minutes_under_an_hour() -> None:
    from cxraug.study.estimate import Estimate

    assert Estimate(136 / 3600, 60_000_000, 5).text() == "about 2 min and 0.06 GB over 5 cells"  # was "0.0 h"
    assert Estimate(1.84, 370_000_000, 24).text() == "about 1.8 h and 0.37 GB over 24 cells"


def _row(n: int, floor: float | None, generator: str = "cgan", fid: float = 150.0, n_floor: int | None = None):
    from cxraug.study.page import QUALITY, StudyRow

    q = {**dict.fromkeys(QUALITY), "fid": fid, "fid_low": fid - 9, "fid_high": fid + 9, "fid_n_real": 135}
    if floor is not None:
        q |= {"fid_floor": floor, "floor_n": n_floor or n}
    return StudyRow(n, generator, 1, "fill", "copy control", "copy", 0.0, -0.1, 0.1, 1.0, "no evidence", "-",
                    **q, gen_cpu_min=0.1, gen_wall_min=0.1, cell_cpu_min=0.1, test_patients=234)  # fmt: skip


def test_a_size_below_compares_minimum_says_why_it_has_no_floor() -> None:
    from cxraug.study.config import StudyConfig
    from cxraug.study.page import no_floor_note

    cfg = StudyConfig(data="d", rare="No Finding", sizes=[10, 50], gen_steps=10)
    note = no_floor_note(cfg, [_row(10, None), _row(50, 12.5)])
    assert "No floor at N = 10:" in note and "minimum of 20" in note and "50" not in note.split(":")[0]
    assert no_floor_note(cfg, [_row(50, 12.5)]) == ""


def test_the_quality_curve_is_fid_at_one_n_beside_each_sizes_floor_with_its_n(tmp_path: Path) -> None:
    """The generators' FID (compare_n synthetic images at every N: comparable along N) is what the
    table and the plot show; the floor, drawn from the N training images, stands beside it with
    its n, never subtracted from a run of another n (on the full sample study that subtraction
    made the generators look worse as N grew, only because the floor's n grew)."""
    from cxraug.study.config import StudyConfig
    from cxraug.study.page import plot_quality, report_table, to_csv
    from cxraug.tables import to_markdown

    cfg = StudyConfig(data="d", rare="No Finding", sizes=[25, 200], gen_steps=10, compare_n=200)
    rows = [_row(25, 110.0, fid=178.4), _row(200, 59.0, fid=168.1)]
    table = "\n".join(to_markdown(report_table(cfg, rows)))
    assert "178.4 [169.4, 187.4]" in table and "110.0 (25)" in table and "59.0 (200)" in table
    assert "FID (val)" in table and "FID − floor" not in table
    png = plot_quality(cfg, rows, tmp_path / "quality.png")
    assert png[:4] == b"\x89PNG" and (tmp_path / "quality.png").read_bytes() == png
    header = to_csv(rows).splitlines()[0].split(",")
    assert {"fid", "fid_low", "fid_high", "fid_floor", "floor_n", "fid_minus_floor"} <= set(header)


def test_the_answer_names_the_comparison_a_generator_lost() -> None:
    """The benchmark's answer "hurt" means losing to the copy control or to the best baseline;
    the study's sentence says which (behind classical augmentation is not worse than no images)."""
    from dataclasses import replace

    from cxraug.study.config import StudyConfig
    from cxraug.study.page import answer_sentence

    cfg = StudyConfig(data="d", rare="No Finding", sizes=[10, 25], generators=["cgan"], gen_steps=10)
    copy10, base10 = _row(10, None), replace(_row(10, None), comparison="best baseline")
    copy25 = replace(_row(25, None), answer="hurt")
    base25 = replace(copy25, comparison="best baseline", verdict="worse")
    text = answer_sentence(cfg, [copy10, base10, copy25, base25])
    assert "worse than the best baseline at N = 25" in text and "no evidence it helps at N = 10" in text
    assert "hurt" not in text and "copy control at" not in text
    lost_copy = answer_sentence(cfg, [copy10, base10, replace(copy25, verdict="worse"), base25])
    assert "worse than its copy control at N = 25" in lost_copy


def test_the_short_floor_sentence_appears_only_where_a_floor_drew_fewer_images() -> None:
    from cxraug.study.config import StudyConfig
    from cxraug.study.page import short_floor_note

    cfg = StudyConfig(data="d", rare="No Finding", sizes=[25, 200], gen_steps=10, compare_n=200)
    assert "Where N < 200" in short_floor_note(cfg, [_row(25, 110.0), _row(200, 59.0)])
    assert short_floor_note(cfg, [_row(200, 59.0)]) == ""


def test_a_cell_of_other_settings_is_refused_before_any_work(inputs: Path, tmp_path: Path, capsys) -> None:
    from cxraug.study.cells import Cell
    from cxraug.study.config import build_config
    from cxraug.study.runner import Study

    out = tmp_path / "s"
    argv = [*_base(inputs, out), "--sizes", "10,25"]
    cfg = build_config(None, {"data": inputs / "sample32", "rare": "No Finding", "sizes": [10, 25], "gen_steps": 10})
    Study(cfg, out).write_marker()
    Cell(out / "n-0025" / "data", {"stage": "reduce", "n": 999}).start()  # made with other settings
    code, err = _cli(argv, capsys)  # the sizes before it were made first, then it stopped at n = 25
    assert code == 2 and "n-0025/data was made with other settings" in err and len(err.strip().splitlines()) == 1
    assert not (out / "n-0010").exists()


def test_a_killed_compare_is_redone_by_compares_overwrite_not_deleted(
    inputs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cxraug.study import runner
    from cxraug.study.cells import SizeCells
    from cxraug.study.config import build_config

    cfg = build_config(None, {"data": inputs / "sample32", "rare": "No Finding", "sizes": [10], "gen_steps": 10})
    study = runner.Study(cfg, tmp_path / "s")
    cell = study.compare_cell(10, [])
    cell.start()  # killed after compare wrote its folder
    (cell.folder / "out").mkdir()
    (cell.folder / "out" / "my-notes.txt").write_text("mine")
    argvs: list[list[str]] = []
    monkeypatch.setattr(runner, "cxraug", lambda argv, log: argvs.append(argv) or {"seconds": 0.0, "cpu_seconds": 0.0})
    study.compare(10, SizeCells(10, tmp_path, runs={"cgan": [tmp_path / "a"], "diffusion": [tmp_path / "b"]}), [])
    assert "--overwrite" in argvs[0]  # compare's own rule: it refuses a folder holding a file it did not write
    assert (cell.folder / "out" / "my-notes.txt").read_text() == "mine"  # was shutil.rmtree'd


def test_the_estimate_counts_drawing_the_synthetic_images() -> None:
    from cxraug.study.config import StudyConfig
    from cxraug.study.estimate import estimate

    def hours(**kw) -> float:
        cfg = StudyConfig(data="d", rare="No Finding", sizes=[10], gen_steps=10, **kw)
        return estimate(cfg, 32, {"No Finding": 600, "Pneumonia": 600}, {10: 590}).hours

    # twice the diffusion sampler's default steps: 0.09 s more an image, for synth's 590 and compare's 200
    extra = (hours(sample_sets={"diffusion": {"steps": 40}}) - hours()) * 3600
    assert extra == pytest.approx(0.09 * (590 + 200), rel=1e-6)
    assert hours() * 3600 > 0.09 * (590 + 200)  # the default draw is in it too (it was left out)


def test_a_train_cell_redone_removes_only_the_run_folder_it_never_started(tmp_path: Path) -> None:
    from cxraug.runs import clear_unstarted_runs

    runs = tmp_path / "runs"
    (runs / "00001-cgan-prepared").mkdir(parents=True)  # killed before its config.json
    (runs / "00002-cgan-prepared").mkdir()
    (runs / "00002-cgan-prepared" / "config.json").write_text("{}")  # a started run: resumed, not removed
    (runs / "notes.txt").write_text("mine")
    (runs / "mine").mkdir()
    clear_unstarted_runs(runs)
    assert sorted(p.name for p in runs.iterdir()) == ["00002-cgan-prepared", "mine", "notes.txt"]
    clear_unstarted_runs(tmp_path / "absent")  # nothing to do


def test_the_estimate_counts_only_the_arms_given() -> None:
    from cxraug.study.config import StudyConfig
    from cxraug.study.estimate import estimate

    def seconds(bench: dict) -> float:
        cfg = StudyConfig(data="d", rare="No Finding", sizes=[10], gen_steps=10, bench_sets=bench)
        return estimate(cfg, 32, {"No Finding": 600, "Pneumonia": 600}, {10: 590}).hours * 3600

    every = seconds({})  # 5 baselines + NAME, NAME+classic and a control pair per generator: 13 arms
    demo = seconds({"arms": ["real", "oversample", "classic", "logit-adjust", "cgan", "diffusion"]})  # + copy, noise
    only_real = seconds({"arms": ["real"]})  # no synthetic arm: no controls
    assert only_real < demo < every
    # The benchmark part is linear in the arms: (13 - 8) arms' worth between every and demo, 7 between demo and real.
    assert (every - demo) / (demo - only_real) == pytest.approx(5 / 7, rel=1e-6)


def test_a_cell_continued_after_a_kill_says_only_its_last_attempt_was_measured(tmp_path: Path) -> None:
    """A killed attempt records no cost (the study died with it), so the cost line of a cell that
    needed several attempts says it counts the last one only; its log holds one `$ cxraug` line
    per attempt. (The sample study's benchmarks: 17 CPU-min shown, 31 of their 55 runs.)"""
    from cxraug.study.cells import Cell, SizeCells
    from cxraug.study.config import StudyConfig
    from cxraug.study.provenance import cost_lines
    from cxraug.study.runner import _cost

    cfg = StudyConfig(data="d", rare="No Finding", sizes=[10], gen_steps=10)
    once, twice = Cell(tmp_path / "gen", {"stage": "train"}), Cell(tmp_path / "bench", {"stage": "benchmark"})
    for cell, attempts in ((once, 1), (twice, 2)):
        cell.start()
        (cell.folder / "log.txt").write_text("".join("$ cxraug benchmark --out x\nline\n" for _ in range(attempts)))
        cell.finish(seconds=120.0, cpu_seconds=60.0)
    sc = SizeCells(10, tmp_path, cost={"gen-cgan-s0": _cost(once), "benchmark": _cost(twice)})
    (line,) = cost_lines(cfg, [sc])
    assert "gen-cgan-s0 1.0 CPU-min (2.0 min);" in line
    assert line.endswith("benchmark 1.0 CPU-min (2.0 min; the last of 2 attempts, the killed ones not counted)")
