"""The training loop: run directories, config resolution, exact resume, divergence, kill + resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from cxraug_cgan.config import CGANConfig
from gen_helpers import tiny_run, tiny_spec
from typer.testing import CliRunner

from cxraug import runs
from cxraug.cli import app
from cxraug.config import resolve
from cxraug.errors import UserError
from cxraug.train import IndexStream, TrainingDiverged, spec_from_run, train

runner = CliRunner()


def final_state(run: Path) -> dict:
    _step, path = runs.checkpoints(run)[-1]
    return torch.load(path, map_location="cpu", weights_only=True)["plugin"]


def assert_same_weights(a: dict, b: dict) -> None:
    for key, da, db in [
        ("G", a["G"], b["G"]),
        ("D", a["D"], b["D"]),
        ("G_ema", a["ema"]["weights"], b["ema"]["weights"]),
    ]:
        for (ka, va), (kb, vb) in zip(da.items(), db.items(), strict=True):
            assert ka == kb and torch.equal(va, vb), f"{key}.{ka} differs"


def test_index_stream_is_a_function_of_step() -> None:
    import numpy as np

    labels = np.array([0] * 10 + [1] * 3)
    s1 = IndexStream(labels, 4, seed=1, balanced=False, rank=0, world=1)
    s2 = IndexStream(labels, 4, seed=1, balanced=False, rank=0, world=1)
    seq = [s1.indices(k).tolist() for k in range(8)]
    assert [s2.indices(k).tolist() for k in (5, 2, 7)] == [seq[5], seq[2], seq[7]]
    assert sorted([i for s in seq[:4] for i in s][:13]) == list(range(13)), "an epoch is a permutation"
    r0 = IndexStream(labels, 2, 1, False, 0, 2).indices(0).tolist()
    r1 = IndexStream(labels, 2, 1, False, 1, 2).indices(0).tolist()
    assert not set(r0) & set(r1) and len(r0) == len(r1) == 2, "processes share a global batch"
    bal = IndexStream(labels, 64, 0, True, 0, 1)
    drawn = labels[np.concatenate([bal.indices(k) for k in range(20)])]
    assert 0.4 < drawn.mean() < 0.6, "balanced sampling draws both classes equally"


def test_config_precedence_and_unknown_keys(tmp_path: Path) -> None:
    file_values = {"train": {"steps": 10, "batch_size": 16}, "model": {"lr_g": 1e-3}, "ema_kimg": 0.9}
    t, m = resolve(CGANConfig, file_values, {"steps": 20, "batch_size": None}, {"lr_g": 5e-4, "train.seed": 3})
    assert (t.steps, t.batch_size, t.seed) == (20, 16, 3)
    assert (m.lr_g, m.ema_kimg) == (5e-4, 0.9)
    with pytest.raises(UserError, match="unknown config key 'lr'"):
        resolve(CGANConfig, {}, {}, {"lr": 1})
    with pytest.raises(UserError, match="unknown model key 'nope'"):
        resolve(CGANConfig, {"model": {"nope": 1}}, {}, {})
    with pytest.raises(UserError, match="steps"):
        resolve(CGANConfig, {}, {"steps": 0}, {})


def test_run_dirs_are_numbered(tmp_path: Path, phantom32: Path) -> None:
    a = runs.next_run_dir(tmp_path, "cgan", "phantom32")
    b = runs.next_run_dir(tmp_path, "cgan", "phantom32")
    assert (a.name, b.name) == ("00001-cgan-phantom32", "00002-cgan-phantom32")


def test_run_contents(tmp_path: Path, phantom32: Path) -> None:
    run = tiny_run("cgan", phantom32, tmp_path, steps=4, sample_every=2)
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["plugin"] == "cgan" and cfg["train"]["steps"] == 4 and cfg["data"]["splits"] == ["train"]
    assert cfg["data"]["real_data"] is False
    logs = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    train_logs = [r for r in logs if r["kind"] == "train"]
    assert [r["step"] for r in train_logs] == [1, 2, 3, 4] and all(r["img_per_s"] > 0 for r in train_logs)
    assert [r["train_s"] for r in train_logs] == sorted(r["train_s"] for r in train_logs)
    stop = logs[-1]
    assert stop["kind"] == "stop" and stop["reason"] == "steps" and stop["images_seen"] == 4 * 8
    assert 0 < stop["train_s"] <= train_logs[-1]["elapsed_s"]
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["step-0000002.png", "step-0000004.png"]
    assert [s for s, _ in runs.checkpoints(run)] == [2, 4]
    assert (run / "export" / "weights.safetensors").is_file()


def test_resume_is_exact(tmp_path: Path, phantom32: Path) -> None:
    straight = tiny_run("cgan", phantom32, tmp_path / "a", steps=4, checkpoint_every=2)
    half = tiny_run("cgan", phantom32, tmp_path / "b", steps=2, checkpoint_every=2)
    spec = spec_from_run(half, {"steps": 4})
    train(half, spec, resume=True)
    assert_same_weights(final_state(straight), final_state(half))
    logs = [json.loads(x) for x in (half / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in logs if r["kind"] == "train"] == [1, 2, 3, 4]
    assert [(r["step"], r["images_seen"]) for r in logs if r["kind"] == "stop"] == [(2, 16), (4, 32)]


def test_divergence_stops_and_keeps_last_good(tmp_path: Path, phantom32: Path, monkeypatch) -> None:
    from cxraug_cgan.plugin import CGAN

    real_step = CGAN.train_step

    def step(self, x, y, acc):
        out = real_step(self, x, y, acc)
        return {**out, "loss_d": float("nan")} if self.steps_done >= 3 else out

    monkeypatch.setattr(CGAN, "train_step", step)
    from cxraug.train import start_run

    spec = tiny_spec("cgan", phantom32, steps=6, checkpoint_every=2)
    run = start_run(spec, tmp_path)
    with pytest.raises(TrainingDiverged, match=r"step 3 \(loss_d = nan\).*last good checkpoint, step 2, stays in"):
        train(run, spec)
    assert [s for s, _ in runs.checkpoints(run)] == [2]


def test_cli_dry_run_and_bad_inputs(tmp_path: Path, phantom32: Path) -> None:
    r = runner.invoke(
        app, ["train-gen", "--plugin", "cgan", "--data", str(phantom32), "--dry-run", "--set", "lr_g=1e-3"]
    )
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["model"]["lr_g"] == 1e-3
    cases = [
        (["--plugin", "gan", "--data", str(phantom32)], "unknown generator plugin 'gan'"),
        (["--plugin", "cgan", "--data", str(tmp_path / "nope")], "does not exist"),
        (["--plugin", "cgan", "--data", str(phantom32), "--set", "lr=1"], "unknown config key 'lr'"),
        (["--plugin", "cgan", "--data", str(phantom32), "--set", "lr_g"], "not key=value"),
        (["--plugin", "cgan", "--data", str(phantom32), "--steps", "0"], "steps"),
        (["--plugin", "cgan", "--data", str(phantom32), "--config", str(tmp_path / "c.yaml")], "does not exist"),
        (["--plugin", "cgan", "--data", str(phantom32), "--mixed-precision", "bf16"], "needs a GPU"),
        (["--resume", str(tmp_path / "nope")], "does not exist"),
        (["--resume", str(phantom32), "--seed", "3"], "is not a cxraug run"),
        (["--plugin", "cgan", "--data", str(phantom32), "--time-limit", "0"], "time_limit"),
        (["--data", str(phantom32)], "needs --plugin"),
        (["--plugin", "cgan", "--data", str(phantom32), "--set", "clock=gpu"], "training key 'clock'"),
    ]
    for args, message in cases:
        if "bf16" in args and torch.cuda.is_available():
            continue
        r = runner.invoke(app, ["train-gen", "--out", str(tmp_path / "runs"), *args])
        assert r.exit_code == 2, (args, r.output)
        assert message in r.output and "Traceback" not in r.output, (args, r.output)
        assert len(r.output.strip().splitlines()) == 1, r.output
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir()), "no run dir left behind"


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "cxraug", *args]


TINY_SETS = ["--set", "z_dim=16", "--set", "g_ch=4", "--set", "d_ch=4", "--set", "max_ch=16",
             "--set", "embed_dim=8", "--set", "standing_stats_batches=2"]  # fmt: skip


KILL_AT_STEP_4 = """
import os, signal, sys
from cxraug_cgan.plugin import CGAN
from cxraug.cli import main
from cxraug.trainplan import TIMED_STEPS

real_step, calls = CGAN.train_step, []
def train_step(self, images, labels, accelerator):
    calls.append(1)
    if len(calls) == TIMED_STEPS + 1 + 4:  # after the plan's warm-up and timed steps (a throwaway copy)
        os.kill(os.getpid(), signal.SIGKILL)
    return real_step(self, images, labels, accelerator)
CGAN.train_step = train_step
sys.argv[0] = "cxraug"
main()
"""


@pytest.mark.slow
def test_sigkill_then_resume_matches_straight_run(tmp_path: Path, phantom32: Path) -> None:
    common = ["--plugin", "cgan", "--data", str(phantom32), "--batch-size", "8", *TINY_SETS,
              "--set", "checkpoint_every=1", "--set", "sample_every=0", "--set", "keep_checkpoints=2"]  # fmt: skip
    env = {**os.environ, "CXRAUG_THREADS": "1"}
    subprocess.run(_cli("train-gen", "--out", str(tmp_path / "a"), "--steps", "6", *common), check=True, env=env,
                   capture_output=True)  # fmt: skip
    # The process kills itself as its 4th step starts (3 checkpoints written): a progress
    # event, not a sleep, so a loaded machine cannot move the kill past the end of the run.
    proc = subprocess.run([sys.executable, "-c", KILL_AT_STEP_4, "train-gen", "--out", str(tmp_path / "b"),
                           "--steps", "6", *common], env=env, capture_output=True)  # fmt: skip
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    run_b = next((tmp_path / "b").iterdir())
    done = [s for s, _ in runs.checkpoints(run_b)]
    assert done and done[-1] < 6, "the run must have been killed mid-way"
    r = subprocess.run(_cli("train-gen", "--resume", str(run_b)), env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    run_a = next((tmp_path / "a").iterdir())
    assert_same_weights(final_state(run_a), final_state(run_b))


def _torchrun(*args: str) -> subprocess.CompletedProcess:
    """Two gloo processes; --standalone picks a free port (a fixed one can be taken on a shared machine)."""
    env = {**os.environ, "CXRAUG_THREADS": "1", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "cxraug", "train-gen", *args]  # fmt: skip
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    return r


# One process (rank 1) sees a NaN loss at step 2; the other is healthy.
NAN_ON_RANK_1 = """
import math, sys
from cxraug_cgan.plugin import CGAN
from cxraug.cli import main

real_step, calls = CGAN.train_step, []
def train_step(self, images, labels, accelerator):
    losses = real_step(self, images, labels, accelerator)
    calls.append(1)
    if accelerator.process_index == 1 and len(calls) == 2:
        losses["loss_d"] = math.nan
    return losses
CGAN.train_step = train_step
sys.argv[0] = "cxraug"
main()
"""


@pytest.mark.slow
@pytest.mark.ddp
def test_a_nan_on_one_process_stops_every_process_with_the_same_line(tmp_path: Path, phantom32: Path) -> None:
    # Two processes started by hand (torchrun would end the healthy one as soon as the other
    # exits, hiding whether it would have stopped by itself), on a free port.
    import socket

    script = tmp_path / "nan_on_rank_1.py"
    script.write_text(NAN_ON_RANK_1)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    args = ["train-gen", "--out", str(tmp_path / "a"), "--steps", "6", "--plugin", "cgan", "--data", str(phantom32),
            "--batch-size", "4", *TINY_SETS, "--set", "sample_every=0"]  # fmt: skip
    procs = []
    for rank in range(2):
        env = {**os.environ, "CXRAUG_THREADS": "1", "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1",
               "MASTER_PORT": str(port), "RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": "2",
               "LOCAL_WORLD_SIZE": "2"}  # fmt: skip
        procs.append(subprocess.Popen([sys.executable, str(script), *args], env=env, text=True,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT))  # fmt: skip
    outs = [p.communicate(timeout=240)[0] for p in procs]  # a hang would wait for gloo's 30-minute timeout
    line = "training diverged at step 2 (process 1: loss_d = nan)"
    for p, out in zip(procs, outs, strict=True):
        assert p.returncode == 2 and line in out and "Traceback" not in out, out[-3000:]


@pytest.mark.ddp
def test_the_command_line_tears_down_the_process_group_on_every_exit(tmp_path: Path) -> None:
    # Left to exit-time destructors, gloo's threads made one process of the NaN test above abort
    # (SIGABRT, "terminate called without an active exception") after printing its clear line.
    import torch.distributed as dist

    from cxraug.cli import main

    for argv in (["--version"], ["train-gen", "--data", str(tmp_path / "missing"), "--steps", "1"]):
        store = dist.FileStore(str(tmp_path / f"store-{len(argv)}"), 1)
        dist.init_process_group("gloo", store=store, rank=0, world_size=1)
        with pytest.raises(SystemExit) as exit_:
            main(argv)
        assert exit_.value.code == (0 if argv == ["--version"] else 2)
        assert not dist.is_initialized()


@pytest.mark.slow
@pytest.mark.ddp
def test_two_processes_with_torchrun_and_exact_resume(tmp_path: Path, phantom32: Path) -> None:
    """DDP on the CPU (gloo): two processes really run and share the work, and a two-process
    run resumed from the main process's checkpoint equals a straight one (the per-process
    noise streams and the all-reduced adaptive p are restored for both processes), with the
    adaptive p, LeCam and lazy R1 on (R1 every 3 steps: it runs before and after the resume),
    and the minibatch std over each process's real and fake halves."""
    common = ["--plugin", "cgan", "--data", str(phantom32), "--batch-size", "4", *TINY_SETS,
              "--set", "log_every=1", "--set", "sample_every=0", "--set", "checkpoint_every=2",
              "--set", "ada_target=0.6", "--set", "ada_speed_img=50",
              "--set", "lecam=0.1", "--set", "r1_gamma=1.0", "--set", "r1_every=3"]  # fmt: skip
    # the straight run also checkpoints by the clock at every step (the main process decides
    # for both: a process saving alone would wait at the barrier), and still equals the resumed one
    r = _torchrun("--out", str(tmp_path / "a"), "--steps", "4", *common, "--set", "checkpoint_minutes=1e-9")
    run = next((tmp_path / "a").iterdir())
    assert json.loads((run / "config.json").read_text())["num_processes"] == 2
    logs = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert logs and all(x["num_processes"] == 2 for x in logs if x["kind"] == "train")
    assert [s for s, _ in runs.checkpoints(run)] == [2, 3, 4], "by the clock at every step, the last 3 kept"
    assert r.stdout.count("run directory:") == 2, "only the main process prints (start and end)"

    _torchrun("--out", str(tmp_path / "b"), "--steps", "2", *common)
    half = next((tmp_path / "b").iterdir())
    _torchrun("--resume", str(half), "--steps", "4")
    straight, resumed = final_state(run), final_state(half)
    assert_same_weights(straight, resumed)
    assert straight["ada"] == resumed["ada"] and straight["ada"]["p"] != 0.5, "the adaptive p moved, and alike"


def test_training_scores_itself(tmp_path: Path, phantom32: Path) -> None:
    """fid_every: FID/KID lines in metrics.jsonl, computed on val with n recorded."""
    from cxraug.metrics.inception import locate_inception_weights

    try:
        locate_inception_weights()
    except UserError as e:
        pytest.skip(str(e))
    run = tiny_run("cgan", phantom32, tmp_path, steps=2, fid_every=2, fid_n=20)
    fid = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if '"fid"' in x]
    assert len(fid) == 1 and fid[0]["step"] == 2 and fid[0]["split"] == "val"
    assert fid[0]["n_real"] == fid[0]["n_fake"] == 20 and fid[0]["fid"] > 0


def test_adaptive_p_follows_the_batch_of_every_process() -> None:
    """Under DDP the sign statistic is summed over processes, so each one moves p alike; two
    processes seeing the same 128 reals move p as one process seeing 256."""
    from cxraug_cgan.augment import AdaptiveP

    overconfident = torch.ones(128)  # sign(D(real)) = 1 > target: p goes up
    one, two = AdaptiveP(0.0, 0.6, 1000, interval=2), AdaptiveP(0.0, 0.6, 1000, interval=2)
    for _ in range(2):
        one.observe(torch.cat([overconfident, overconfident]))
        two.observe(overconfident, reduce=lambda t: 2 * t)  # what an all-reduce over 2 equal ranks gives
    assert one.p == two.p == pytest.approx(0.512)
    alone = AdaptiveP(0.0, 0.6, 1000, interval=2)
    alone.observe(overconfident)
    assert alone.p == 0.0 and alone.count == 128, "one step of two: not adjusted yet"
    alone.observe(-overconfident)  # mean sign 0 < target: p goes down, clipped at 0
    assert alone.p == 0.0 and alone.count == 0


class StepTimer:
    """An injected clock: every reading advances 0.005 s, so a time budget ends at a step that
    does not depend on how loaded the machine is."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 0.005
        return self.now


def test_time_limit_ends_the_run_as_steps_would(tmp_path: Path, phantom32: Path) -> None:
    from cxraug.train import start_run

    # 0.003 min = 0.18 s of training steps; a step reads the clock twice: 0.005 s each.
    spec = tiny_spec("cgan", phantom32, steps=100_000, time_limit=0.003, checkpoint_every=0)
    run = start_run(spec, tmp_path)
    train(run, spec, timer=StepTimer())
    logs = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    stop = logs[-1]
    assert stop["kind"] == "stop" and stop["reason"] == "time_limit" and stop["time_limit_min"] == 0.003
    assert stop["step"] in (36, 37) and 0.18 <= stop["train_s"] < 0.19, stop  # 36 x 0.005 s, up to rounding
    last = stop["step"]
    assert [s for s, _ in runs.checkpoints(run)] == [last], "the last step is checkpointed"
    assert (run / "samples" / f"step-{last:07d}.png").is_file(), "and gets its grid"
    assert json.loads((run / "export" / "config.json").read_text())["step"] == last, "and is exported"
    assert json.loads((run / "config.json").read_text())["train"]["time_limit"] == 0.003

    again = train(run, spec_from_run(run), resume=True, timer=StepTimer())  # budget spent: nothing to do
    assert (again["step"], again["reason"]) == (last, "time_limit")
    longer = train(run, spec_from_run(run, {"time_limit": 0.006}), resume=True, timer=StepTimer())
    assert longer["reason"] == "time_limit" and longer["step"] in (72, 73) and 0.36 <= longer["train_s"] < 0.37
    assert json.loads((run / "config.json").read_text())["train"]["time_limit"] == 0.006


def test_checkpoints_come_by_the_wall_clock_too(tmp_path: Path, phantom32: Path) -> None:
    """checkpoint_minutes saves once that much wall time has passed since the last save, so a
    killed slow run loses minutes; the saves leave the training itself unchanged."""
    from cxraug.train import start_run

    class Wall:  # every reading advances one second
        now = 0.0

        def __call__(self) -> float:
            self.now += 1.0
            return self.now

    # 3 s between saves; readings: the start, one after each step, one after each save
    spec = tiny_spec("cgan", phantom32, steps=7, checkpoint_every=0, checkpoint_minutes=3 / 60)
    run = start_run(spec, tmp_path / "a")
    train(run, spec, wall=Wall())
    assert [s for s, _ in runs.checkpoints(run)] == [3, 6, 7]
    plain = tiny_run("cgan", phantom32, tmp_path / "b", steps=7, checkpoint_every=0, checkpoint_minutes=0)
    assert [s for s, _ in runs.checkpoints(plain)] == [7], "0: by steps only"
    assert_same_weights(final_state(run), final_state(plain))


def test_cpu_clock_counts_process_cpu_seconds(tmp_path: Path, phantom32: Path, monkeypatch) -> None:
    """clock=cpu budgets this process's CPU seconds, which other jobs on the machine cannot shorten."""
    import time

    from cxraug.train import start_run

    monkeypatch.setattr(time, "process_time", StepTimer())  # the loop reads time.process_time at call time
    spec = tiny_spec("cgan", phantom32, steps=100_000, time_limit=0.003, checkpoint_every=0, clock="cpu")
    summary = train(start_run(spec, tmp_path), spec)
    assert summary["reason"] == "time_limit" and summary["step"] in (36, 37), summary
    with pytest.raises(ValueError):
        tiny_spec("cgan", phantom32, clock="gpu")


def test_time_limit_alone_lifts_the_step_cap() -> None:
    from cxraug.config import DEFAULT_STEPS, UNTIL_TIME_LIMIT, TrainConfig

    assert TrainConfig().steps == DEFAULT_STEPS
    assert TrainConfig(time_limit=5).steps == UNTIL_TIME_LIMIT
    assert TrainConfig(time_limit=5, steps=300).steps == 300


def test_resume_with_the_original_command(tmp_path: Path, phantom32: Path) -> None:
    out = tmp_path / "runs"
    base = ["train-gen", "--plugin", "cgan", "--data", str(phantom32), "--out", str(out), "--seed", "1",
            "--batch-size", "8", *TINY_SETS, "--set", "checkpoint_every=2"]  # fmt: skip
    r = runner.invoke(app, [*base, "--steps", "2"])
    assert r.exit_code == 0, r.output
    (run,) = [p for p in out.iterdir() if p.is_dir()]  # beside it: the run's lock file
    r = runner.invoke(app, [*base, "--steps", "4", "--resume", str(run)])
    assert r.exit_code == 0, r.output
    assert [s for s, _ in runs.checkpoints(run)][-1] == 4 and "step 4" in r.output
    conflicts = [
        (["--seed", "2"], "training key 'seed' is 1 in the run, the command gives 2"),
        (["--set", "g_ch=8"], "model key 'g_ch' is 4 in the run, the command gives 8"),
        (["--set", "lr_g=1e-3"], "model key 'lr_g' is 0.0002 in the run, the command gives 0.001"),
        (["--plugin", "diffusion"], "the run's plugin is 'cgan', the command gives 'diffusion'"),
        (["--data", str(tmp_path)], "the command gives --data"),
        (["--set", "nope=1"], "unknown config key 'nope'"),
    ]
    for extra, message in conflicts:
        r = runner.invoke(app, ["train-gen", "--resume", str(run), "--steps", "6", *extra])
        assert r.exit_code == 2 and message in r.output, (extra, r.output)
        assert len(r.output.strip().splitlines()) == 1, r.output
    assert [s for s, _ in runs.checkpoints(run)][-1] == 4, "a refused resume trains nothing"


def test_resume_after_a_torn_metrics_line(tmp_path: Path, phantom32: Path) -> None:
    """A kill or a full disk mid-line leaves metrics.jsonl without its last newline: resume
    drops that line and goes on; a line appended after it (score) starts on its own line."""
    from cxraug.fsutil import append_jsonl, read_jsonl

    run = tiny_run("cgan", phantom32, tmp_path / "a", steps=2, checkpoint_every=2)
    with open(run / "metrics.jsonl", "a") as f:
        f.write('{"step": 3, "kind": "tra')  # the interrupted run's last, torn write
    assert [r["step"] for r in read_jsonl(run / "metrics.jsonl")][-1] == 2
    append_jsonl(run / "metrics.jsonl", {"step": 2, "kind": "score"})
    assert read_jsonl(run / "metrics.jsonl")[-1] == {"step": 2, "kind": "score"}
    train(run, spec_from_run(run, {"steps": 4}), resume=True)
    logs = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]  # every line whole now
    assert [r["step"] for r in logs if r["kind"] == "train"] == [1, 2, 3, 4]


def test_kid_subset_size_help_says_what_the_code_does() -> None:
    from cxraug.metrics.registry import KID_SUBSET_RULE, kid_subset_size

    assert kid_subset_size(50, 400) == 25 and kid_subset_size(5000, 4000) == 1000 and kid_subset_size(3, 9) == 2
    assert KID_SUBSET_RULE == "min(1000, half the smaller of n_real and n_fake), at least 2"
    r = runner.invoke(app, ["score", "--help"], env={"COLUMNS": "300"})
    assert "half the smaller of n_real and n_fake" in " ".join(r.output.split())


def test_unsupported_size_fails_before_any_run_directory(tmp_path: Path, phantom32: Path, monkeypatch) -> None:
    from cxraug import registry

    monkeypatch.setattr(registry.get("cgan"), "max_size", 16)  # a plugin that cannot make 32 px images
    r = runner.invoke(app, ["train-gen", "--plugin", "cgan", "--data", str(phantom32), "--out", str(tmp_path / "runs")])
    assert r.exit_code == 2 and "supports 32 to 16 px, the data is 32 px" in r.output, r.output
    assert "run directory" not in r.output and not (tmp_path / "runs").exists()


def test_seeds_train_one_run_per_seed(tmp_path: Path, phantom32: Path) -> None:
    """--seeds 0,1: replicates of one method, sequentially, each its own run folder, which
    compare and benchmark accept as replicates (the same method but for the seed)."""
    from cxraug.replicates import check_replicates, seed_of

    out = tmp_path / "runs"
    base = ["train-gen", "--plugin", "cgan", "--data", str(phantom32), "--out", str(out), "--steps", "2",
            "--batch-size", "8", "--set", "sample_every=0", *TINY_SETS]  # fmt: skip
    r = runner.invoke(app, [*base, "--seeds", "0,1"])
    assert r.exit_code == 0, r.output
    made = sorted(p for p in out.iterdir() if p.is_dir())
    assert len(made) == 2 and [seed_of(run) for run in made] == [0, 1]
    assert all((run / "export" / "weights.safetensors").is_file() for run in made)
    check_replicates("cgan", made)
    for args, message in (
        (["--seeds", "0,0"], "a seed given twice"),
        (["--seeds", "0,x"], "expected integers separated by commas"),
        (["--seeds", "0,-1"], "--seeds"),
        (["--seeds", "0,1", "--seed", "3"], "without --seed and --resume"),
    ):
        r = runner.invoke(app, [*base, *args])
        assert r.exit_code == 2 and message in r.output and len(r.output.strip().splitlines()) == 1, (args, r.output)
    assert len([p for p in out.iterdir() if p.is_dir()]) == 2, "a refused --seeds trains nothing"
