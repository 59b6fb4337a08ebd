"""Run-level parallelism of the benchmark (``--spread runs``): under torchrun two CPU
processes (gloo) each train whole arm x seed runs, and the stored predictions equal a
one-process run's bit for bit; a process killed mid-way leaves nothing half-written, and the
next invocation, with another number of processes, trains what is missing. The option's
errors are one line."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cxraug.benchmark.config import build_config
from cxraug.benchmark.outfolder import RESULT, run_dir
from cxraug.benchmark.runner import run_benchmark
from cxraug.benchmark.spread import resolve_spread, share
from cxraug.cli import main
from cxraug.errors import UserError
from cxraug.integrity import write_sums

HERE = Path(__file__).resolve().parent
ARMS, SEEDS = ["real", "oversample"], [0, 1]
OPTS = ["--arms", ",".join(ARMS), "--seeds", "2", "--set", "model=tiny", "--set", "epochs=1",
        "--set", "plots=false", "--set", "bootstrap_draws=100"]  # fmt: skip
ENV = {**os.environ, "CXRAUG_THREADS": "1", "OMP_NUM_THREADS": "1", "COLUMNS": "160"}


def _cfg():
    return build_config(None, {"arms": ARMS, "seeds": SEEDS, "model": "tiny", "epochs": 1, "plots": False,
                               "bootstrap_draws": 100})  # fmt: skip


@pytest.fixture(scope="module")
def one_process(phantom32, tmp_path_factory) -> Path:
    """The straight one-process benchmark (one thread, as each torchrun process below)."""
    out = tmp_path_factory.mktemp("one") / "bench"
    report = run_benchmark(phantom32, _cfg(), out)
    assert report is not None and report.trained == 4
    return out


def stored_predictions(out: Path) -> dict[str, dict[str, np.ndarray]]:
    found = {}
    for path in sorted(out.glob("runs/*/*/predictions.npz")):
        with np.load(path) as z:
            found[path.parent.relative_to(out).as_posix()] = {k: z[k] for k in z.files}
    return found


def assert_same_predictions(a: Path, b: Path) -> None:
    pa, pb = stored_predictions(a), stored_predictions(b)
    assert sorted(pa) == sorted(pb) == sorted(f"runs/{arm}/seed-{s}" for arm in ARMS for s in SEEDS)
    for run, arrays in pa.items():
        assert sorted(arrays) == sorted(pb[run])
        for k, v in arrays.items():
            assert np.array_equal(v, pb[run][k]), f"{run} {k} differs"


def _torchrun(script: list[str]) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", *script]
    return subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
@pytest.mark.ddp
def test_two_processes_spread_runs_equal_one_process(phantom32, one_process, tmp_path):
    out = tmp_path / "two"
    r = _torchrun(["-m", "cxraug", "benchmark", "--data", str(phantom32), "--out", str(out), *OPTS])
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.count("4 runs trained, 0 reused") == 1, "only the main process reports"
    assert_same_predictions(one_process, out)
    results = [json.loads(p.read_text()) for p in out.glob("runs/*/*/result.json")]
    assert {x["process_index"] for x in results} == {0, 1}, "both processes trained runs"
    assert all(x["spread"] == "runs" and x["num_processes"] == 1 and x["key"]["world_size"] == 1 for x in results)
    assert sorted((x["arm"], x["seed"], x["process_index"]) for x in results) == sorted(
        [("real", 0, 0), ("real", 1, 1), ("oversample", 0, 0), ("oversample", 1, 1)]
    ), "the pending runs in their fixed order, dealt out by rank"
    assert (out / "summary.md").is_file()


@pytest.mark.slow
@pytest.mark.ddp
def test_process_killed_mid_way_is_resumed_by_one_process(phantom32, one_process, tmp_path):
    out = tmp_path / "killed"
    argv = ["benchmark", "--data", str(phantom32), "--out", str(out), *OPTS]
    # Process 1 holds real/seed-1 then oversample/seed-1; it dies while storing the second.
    r = _torchrun([str(HERE / "spread_worker.py"), "1", "2", *argv])
    assert r.returncode != 0
    assert (run_dir(out, "real", 1) / RESULT).is_file()
    killed = run_dir(out, "oversample", 1)
    assert not killed.exists() and (killed.parent / ".seed-1.partial" / RESULT).is_file(), "killed mid-store"
    assert not (out / "summary.md").exists()

    rerun = subprocess.run([sys.executable, "-m", "cxraug", *argv], env=ENV, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    trained = [line for line in rerun.stdout.splitlines() if "runs trained" in line]
    n_trained = int(trained[0].split()[0])
    assert 1 <= n_trained <= 3 and f"{n_trained} runs trained, {4 - n_trained} reused" in trained[0]
    assert not list(out.glob("runs/*/.*.partial")), "the half-written run is gone"
    assert_same_predictions(one_process, out)


def test_runs_of_another_world_size_are_refused_with_what_to_launch(phantom32, one_process, tmp_path):
    out = tmp_path / "ddp"
    shutil.copytree(one_process, out)
    path = run_dir(out, "real", 0)
    result = json.loads((path / RESULT).read_text())
    result["key"]["world_size"] = 2  # as if trained with --spread ddp under two processes
    (path / RESULT).write_text(json.dumps(result))
    write_sums(path, [RESULT, "predictions.npz"])
    with pytest.raises(UserError, match="trained by DDP over 2 processes: launch 2 with --spread ddp"):
        run_benchmark(phantom32, _cfg(), out)


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--spread", "many"], "--spread 'many': choose runs"),
        (["--spread", "runs", "--export-reduced", "{tmp}/reduced"], "--export-reduced trains nothing"),
        (["--force", "--export-reduced", "{tmp}/reduced", "--controlled-imbalance", "Hernia=2"], "--force trains past"),
    ],
)
def test_spread_errors_are_one_line(extra, expected, phantom32, tmp_path, capsys):
    argv = ["benchmark", "--data", str(phantom32), "--out", str(tmp_path / "out")]
    with pytest.raises(SystemExit) as e:
        main(argv + [a.format(tmp=tmp_path) for a in extra])
    err = capsys.readouterr().err
    assert e.value.code == 2 and len(err.strip().splitlines()) == 1 and expected in err, err
    assert not (tmp_path / "out").exists() and not (tmp_path / "reduced").exists()


def test_report_only_takes_no_spread(one_process, capsys):
    with pytest.raises(SystemExit) as e:
        main(["benchmark", "--report-only", str(one_process), "--spread", "runs"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and len(err.strip().splitlines()) == 1 and "--report-only takes only" in err


def test_auto_spreads_runs_unless_some_process_would_have_none():
    assert resolve_spread("auto", 70, 4) == "runs"
    assert resolve_spread("auto", 4, 4) == "runs"
    assert resolve_spread("auto", 3, 4) == "ddp"
    assert resolve_spread("auto", 1, 1) == "runs"
    assert resolve_spread("ddp", 70, 4) == "ddp" and resolve_spread("runs", 2, 4) == "runs"
    jobs = list(range(7))
    assert [share(jobs, r, 3) for r in range(3)] == [[0, 3, 6], [1, 4], [2, 5]]


def test_launched_processes_share_the_cores(monkeypatch):
    import torch

    from cxraug.commands.common import configure_threads

    before = torch.get_num_threads()
    monkeypatch.delenv("CXRAUG_THREADS", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    try:
        monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")
        configure_threads()
        assert torch.get_num_threads() == 2
        monkeypatch.delenv("LOCAL_WORLD_SIZE")
        configure_threads()
        assert torch.get_num_threads() == 8
    finally:
        torch.set_num_threads(before)
