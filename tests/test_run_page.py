"""run.html (issue 34): train-gen writes the run's own page at every checkpoint (budget, loss
curves, training-time FID, sample grids over time), self-contained; `cxraug report --run`
rebuilds it; and it renders in a headless browser (skipped where none is installed)."""

from __future__ import annotations

import json
import re

import pytest
from cli_helpers import run_main as _cli
from test_compare_html import PROBE, _browser, _run_browser

from cxraug.cli import main
from cxraug.runpage import MAX_GRIDS, PAGE, curve_keys, spaced


@pytest.fixture(scope="module")
def run(phantom32, tmp_path_factory):
    """A toy train-gen: 12 cgan steps, a grid and a checkpoint every 4, logged every 2."""
    return _train_gen(phantom32, tmp_path_factory.mktemp("runpage"), 12, "sample_every=4", "checkpoint_every=4",
                      "log_every=2")  # fmt: skip


def _train_gen(data, root, steps: int, *sets: str):
    """`cxraug train-gen` of the cgan at batch 16 with these --set values; its run folder."""
    argv = ["train-gen", "--plugin", "cgan", "--data", str(data), "--out", str(root), "--steps", str(steps),
            "--batch-size", "16", *[a for s in sets for a in ("--set", s)]]  # fmt: skip
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 0
    (found,) = [p for p in root.iterdir() if p.is_dir()]
    return found


def test_spaced_keeps_the_ends():
    assert spaced(list(range(3)), 8) == [0, 1, 2]
    picked = spaced(list(range(100)), 8)
    assert len(picked) == 8 and picked[0] == 0 and picked[-1] == 99


def test_curves_are_the_ones_records_name_and_older_runs_keep_theirs():
    named = [{"step": 5, "kind": "eval", "fid": 90.0, "recall": 0.2, "curves": ["fid", "recall"]}]
    assert curve_keys(named) == ["fid", "recall"]
    older = [{"step": 5, "kind": "eval", "fid": 90.0, "precision": 0.3, "recall": 0.2, "coverage": 0.4}]
    assert {"fid", "precision", "recall", "coverage"} <= set(curve_keys(older))  # drawn before 'curves' existed


def test_train_gen_writes_a_self_contained_run_page(run):
    page = (run / PAGE).read_text()
    assert "http://" not in page and "https://" not in page and "<script" not in page and 'src="data:' in page
    assert "steps done</td><td>12 of 12" in page and "finished at step 12: step cap reached" in page
    assert "losses against step" in page
    # one grid per 4 steps: 4, 8, 12, each shown
    assert [int(s) for s in re.findall(r'alt="samples at step (\d+)"', page)] == [4, 8, 12]
    assert "Training-time evaluation" in page and "fid_every=K" in page  # off, and said so


def test_run_page_is_updated_at_each_checkpoint(phantom32, tmp_path, monkeypatch):
    """Written after each checkpoint (steps 2, 4, 6) and once more when the run ends."""
    from gen_helpers import tiny_run

    import cxraug.train

    seen = []
    real = cxraug.train.write_run_page

    def spy(run):
        path = real(run)
        seen.append(re.search(r"steps done</td><td>(\d+) of 6", path.read_text()).group(1))
        return path

    monkeypatch.setattr(cxraug.train, "write_run_page", spy)
    run = tiny_run("cgan", phantom32, tmp_path / "runs", steps=6, checkpoint_every=2, sample_every=2)
    assert seen == ["2", "4", "6", "6"]
    page = (run / PAGE).read_text()
    assert "last checkpoint</td><td>step 6" in page and "finished at step 6" in page
    assert not list(run.glob(".run.html.*"))  # no temporary left


def test_report_run_rebuilds_the_page(run, tmp_path, capsys):
    (run / PAGE).unlink()
    code, printed, err = _cli(["report", "--run", str(run)], capsys)
    assert code == 0, err
    assert (run / PAGE).is_file() and str(run / PAGE) in " ".join(printed.split())
    code, _, err = _cli(["report", "--run", str(tmp_path)], capsys)
    assert code == 2 and "is not a cxraug run" in err and len(err.strip().splitlines()) == 1
    code, _, err = _cli(["report", "--run", str(run), "--benchmark", str(tmp_path)], capsys)
    assert code == 2 and "--run" in err and len(err.strip().splitlines()) == 1


def test_many_grids_are_thinned(run, tmp_path):
    import shutil

    from cxraug.runpage import build_run_page

    copy = tmp_path / run.name
    shutil.copytree(run, copy)
    grid = (copy / "samples" / "step-0000004.png").read_bytes()
    for step in range(16, 80, 4):
        (copy / "samples" / f"step-{step:07d}.png").write_bytes(grid)
    steps = [int(s) for s in re.findall(r'alt="samples at step (\d+)"', build_run_page(copy))]
    assert len(steps) == MAX_GRIDS and steps[0] == 4 and steps[-1] == 76


def test_run_page_renders_in_a_headless_browser(run, tmp_path):
    browser = _browser()
    html = (run / PAGE).read_text()
    n_img = len(re.findall(r"<img ", html))
    assert n_img == 4  # losses and three grids
    probe = tmp_path / "probe" / "page.html"
    probe.parent.mkdir()
    probe.write_text(re.sub(r"<meta http-equiv=\"Content-Security-Policy\"[^>]*>", "", html).replace(
        "</body>", PROBE + "</body>"))  # fmt: skip
    dom = _run_browser(browser, tmp_path / "profile", "--virtual-time-budget=10000", "--dump-dom", probe.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    found = re.search(r'<pre id="probe">(.*?)</pre>', dom.stdout, re.S)
    assert found, dom.stdout[-2000:]
    seen = json.loads(found.group(1).replace("&quot;", '"'))
    assert seen["images"] == ["ok"] * n_img and seen["tables"] == 1  # the budget
    shot = tmp_path / "shot" / "run.png"
    shot.parent.mkdir()
    r = _run_browser(browser, tmp_path / "profile", "--window-size=1280,2400", f"--screenshot={shot}",
                     (run / PAGE).as_uri())  # fmt: skip
    assert r.returncode == 0 and shot.is_file() and shot.stat().st_size > 10_000, r.stderr[-2000:]


def test_the_page_of_a_run_with_training_time_fid_plots_it(phantom32, tmp_path, monkeypatch):
    """End to end through train-gen: fid_every=2 logs an evaluation at steps 2 and 4, and the
    page draws one curve per logged metric, saying on which split and how many images."""
    from test_score_support import use_pixel_projection

    use_pixel_projection(monkeypatch, phantom32)
    run = _train_gen(phantom32, tmp_path, 4, "fid_every=2", "fid_n=30", "checkpoint_every=2")
    evals = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if '"kind": "fid"' in line]
    assert [r["step"] for r in evals] == [2, 4] and all(isinstance(r["fid"], float) for r in evals)
    page = (run / PAGE).read_text()
    assert 'alt="fid against step"' in page and 'alt="kid against step"' in page
    assert "fid_every=K" not in page  # the "off" note is gone
