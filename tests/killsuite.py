"""Kill-anywhere fault injection for every stage: SIGKILL a stage at a random moment, check
that nothing half-written is left for a later stage to read, rerun it as a user would, and
compare the result with a straight run's.

Used by tests/test_kill_anywhere.py (short mode: one kill per stage) and by
benchmarks/kill_anywhere.py (long mode: many kills per stage, figures for
docs/reliability.md). Each stage works in its own folder ``W`` on shared inputs ``B``
(a prepared phantom set, a tiny trained cgan run, a synthetic set), all tiny.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

TINY_CGAN = ["--set", "z_dim=16", "--set", "g_ch=4", "--set", "d_ch=4", "--set", "max_ch=16",
             "--set", "embed_dim=8", "--set", "standing_stats_batches=2"]  # fmt: skip
DONE_ALREADY = ("already exists", "already holds a finished")  # a rerun of a finished stage says so


def sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _env() -> dict[str, str]:
    return {**os.environ, "CXRAUG_THREADS": "1", "OMP_NUM_THREADS": "1", "COLUMNS": "160"}


def cli_subprocess(argv: list[str]) -> tuple[int, str]:
    r = subprocess.run([sys.executable, "-m", "cxraug", *argv], env=_env(), capture_output=True, text=True)
    return r.returncode, r.stdout + r.stderr


def cli_inprocess(argv: list[str]) -> tuple[int, str]:
    from typer.testing import CliRunner

    from cxraug.cli import app

    r = CliRunner().invoke(app, argv)
    return r.exit_code, r.output


Runner = Callable[[list[str]], tuple[int, str]]


# --- what each stage must produce ---------------------------------------------------------------
def digest_prepared(out: Path) -> dict:
    meta = json.loads((out / "dataset.json").read_text())
    for volatile in ("seconds", "options"):  # options hold the (per-trial) --out path
        meta.pop(volatile)
    files = sorted(p.name for p in out.iterdir() if p.suffix in (".npy", ".csv"))
    return {"files": {f: sha(out / f) for f in files}, "meta": meta}


def _run_dir(w: Path) -> Path | None:
    found = sorted(p.parent for p in (w / "runs").glob("*/config.json"))
    return found[-1] if found else None


def digest_run(w: Path) -> dict:
    run = _run_dir(w)
    assert run is not None
    steps = [json.loads(ln)["step"] for ln in (run / "metrics.jsonl").read_text().splitlines() if ln.strip()]
    return {"export": sha(run / "export" / "weights.safetensors"), "logged_steps": steps}


def digest_synth(out: Path) -> dict:
    return {"manifest": sha(out / "manifest.csv"), "provenance_complete": json.loads((out / "provenance.json").read_text())["complete"]}  # fmt: skip


def _numbers(obj, path: str = "") -> dict[str, object]:
    """Every number and string of scores.json by its key path, minus what is per-invocation."""
    if isinstance(obj, dict):
        out: dict[str, object] = {}
        for k, v in obj.items():
            if k not in ("time", "cache", "outputs", "seconds"):
                out.update(_numbers(v, f"{path}/{k}"))
        return out
    if isinstance(obj, list):
        out = {}
        for i, v in enumerate(obj):
            out.update(_numbers(v, f"{path}/{i}"))
        return out
    return {path: obj}


def digest_score(out: Path) -> dict:
    return _numbers(json.loads((out / "scores.json").read_text()))


def digest_benchmark(out: Path) -> dict:
    return {"results.csv": sha(out / "results.csv")}


# --- what may be read after a kill, before the rerun ----------------------------------------------
def check_prepared(out: Path, straight: dict) -> list[str]:
    if not out.exists():
        return []
    try:
        from cxraug.data.prepared import open_prepared

        open_prepared(out)
        return [] if digest_prepared(out) == straight else [f"{out} is readable but differs from a straight run"]
    except Exception as e:
        return [f"{out} exists but is not a whole prepared dataset: {type(e).__name__}: {e}"]


def check_run(w: Path, straight: dict) -> list[str]:
    from cxraug import checkpoint, runs
    from cxraug.errors import UserError

    run = _run_dir(w)
    if run is None:
        return []
    problems = []
    if (run / runs.EXPORT_DIR).exists():
        try:
            runs.load_generator(run)
        except UserError as e:
            problems.append(f"export of {run} is unusable: {e}")
    for _, path in runs.checkpoints(run):
        if checkpoint.checksum_path(path).is_file():
            try:
                checkpoint.read(path)
            except checkpoint.BadCheckpoint as e:
                problems.append(f"{path} has a checksum but fails it: {e}")
    return problems


def check_synth(out: Path, straight: dict) -> list[str]:
    prov = out / "provenance.json"
    if not prov.is_file() or not json.loads(prov.read_text()).get("complete"):
        return []  # unfinished: score and benchmark refuse it (open_synthetic)
    with open(out / "manifest.csv", newline="") as f:
        bad = [r["file"] for r in csv.DictReader(f) if sha(out / r["file"]) != r["checksum"]]
    problems = [f"{out}: {len(bad)} image(s) differ from the manifest"] if bad else []
    if digest_synth(out) != straight:
        problems.append(f"{out} is marked complete but differs from a straight run")
    return problems


def check_score(out: Path, straight: dict) -> list[str]:
    if not out.exists():
        return []
    try:
        return [] if digest_score(out) == straight else [f"{out} differs from a straight run"]
    except (OSError, ValueError) as e:
        return [f"{out} exists but is not whole: {e}"]


def check_benchmark(out: Path, straight: dict) -> list[str]:
    from cxraug.benchmark.outfolder import RESULT
    from cxraug.benchmark.storedruns import load_run

    problems = []
    for res in out.glob("runs/*/seed-*/" + RESULT):
        try:
            load_run(res.parent)
        except Exception as e:
            problems.append(f"stored run {res.parent} is not whole: {type(e).__name__}: {e}")
    if (out / "results.csv").is_file() and digest_benchmark(out) != straight:
        problems.append(f"{out}/results.csv differs from a straight run")
    return problems


# --- the stages ------------------------------------------------------------------------------------
@dataclass
class Stage:
    name: str
    argv: Callable[[Path, Path], list[str]]  # (inputs B, work W) -> the command
    output: Callable[[Path], Path]  # W -> what the stage writes
    digest: Callable[[Path], dict]  # of output (train: of W)
    check: Callable[[Path, dict], list[str]]  # problems left after a kill
    rerun: Callable[[Path, Path], list[str]] | None = None  # how a user reruns, if not the same command


def _train_rerun(b: Path, w: Path) -> list[str]:
    run = _run_dir(w)
    return ["train-gen", "--resume", str(run)] if run is not None else STAGES["train-gen"].argv(b, w)


STAGES: dict[str, Stage] = {
    "prepare": Stage(
        "prepare",
        lambda b, w: ["prepare", "--source", "phantom", "--n", "3000", "--size", "64", "--workers", "2", "--out", str(w / "data")],
        lambda w: w / "data", digest_prepared, lambda w, s: check_prepared(w / "data", s),
    ),
    "train-gen": Stage(
        "train-gen",
        lambda b, w: ["train-gen", "--plugin", "cgan", "--data", str(b / "data"), "--out", str(w / "runs"), "--steps", "8",
                      "--batch-size", "8", *TINY_CGAN, "--set", "checkpoint_every=1", "--set", "sample_every=4",
                      "--set", "keep_checkpoints=2", "--set", "log_every=1"],
        lambda w: w, digest_run, check_run, _train_rerun,
    ),
    "synth": Stage(
        "synth",
        lambda b, w: ["synth", "--run", str(b / "run"), "--class", "all", "-n", "6", "--batch-size", "2", "--out", str(w / "syn")],
        lambda w: w / "syn", digest_synth, lambda w, s: check_synth(w / "syn", s),
    ),
    "score": Stage(
        "score",
        lambda b, w: ["score", "--images", str(b / "syn"), "--data", str(b / "data"),
                      "--classes", "No Finding,Effusion,Hernia", "--no-memorization", "--metrics", "fid,kid", "--min-images", "6", "--kid-subsets", "5", "--batch-size", "8",
                      "--cache-dir", str(w / "cache"), "--out", str(w / "score"), "--json"],
        lambda w: w / "score", digest_score, lambda w, s: check_score(w / "score", s),
    ),
    "benchmark": Stage(
        "benchmark",
        lambda b, w: ["benchmark", "--data", str(b / "data"), "--out", str(w / "bench"), "--arms", "real,oversample",
                      "--seeds", "2", "--set", "model=tiny", "--set", "epochs=1", "--set", "plots=false"],
        lambda w: w / "bench", digest_benchmark, lambda w, s: check_benchmark(w / "bench", s),
    ),
}  # fmt: skip


def make_inputs(b: Path, run: Runner = cli_inprocess) -> Path:
    """B/data (phantom, NOT real data), B/run (a tiny cgan), B/syn (its synthetic set)."""
    b.mkdir(parents=True, exist_ok=True)
    steps = [
        ["prepare", "--source", "phantom", "--n", "240", "--size", "32", "--workers", "1", "--out", str(b / "data")],
        ["train-gen", "--plugin", "cgan", "--data", str(b / "data"), "--out", str(b / "runs"), "--steps", "2",
         "--batch-size", "8", *TINY_CGAN, "--set", "sample_every=0"],
    ]  # fmt: skip
    for argv in steps:
        code, text = run(argv)
        assert code == 0, text
    os.symlink(next(p for p in (b / "runs").iterdir() if p.is_dir()), b / "run")
    code, text = run(["synth", "--run", str(b / "run"), "--class", "all", "-n", "6", "--out", str(b / "syn")])
    assert code == 0, text
    return b


@dataclass
class Trial:
    stage: str
    kill_at_s: float | None  # seconds after the first write; None: it finished before the kill
    reruns: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def survived(self) -> bool:
        return not self.problems


def straight(stage: Stage, b: Path, w: Path, run: Runner) -> tuple[dict, float]:
    """The reference result, and how long the stage writes (first output to exit)."""
    t0 = time.perf_counter()
    code, text = run(stage.argv(b, w))
    assert code == 0, f"straight {stage.name} failed: {text[-2000:]}"
    return stage.digest(stage.output(w)), time.perf_counter() - t0


def straight_subprocess(stage: Stage, b: Path, w: Path) -> tuple[dict, float]:
    """The reference from a real process, and the seconds from its first write to its exit."""
    proc = subprocess.Popen([sys.executable, "-m", "cxraug", *stage.argv(b, w)], env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
    _first_write(w, proc)
    t0 = time.perf_counter()
    _, err = proc.communicate()
    assert proc.returncode == 0, f"straight {stage.name} failed: {err[-2000:]}"
    return stage.digest(stage.output(w)), time.perf_counter() - t0


def _first_write(w: Path, proc: subprocess.Popen, timeout: float = 300) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if w.is_dir() and any(w.iterdir()):
            return True
        time.sleep(0.01)
    return False


def kill_once(stage: Stage, b: Path, w: Path, reference: dict, span: float, rng: random.Random, rerun: Runner) -> Trial:
    """Start the stage, SIGKILL its process group at a random moment of its writing, check
    what is left, rerun until it succeeds (at most 3 times), and compare with ``reference``."""
    w.mkdir(parents=True)
    proc = subprocess.Popen(
        [sys.executable, "-m", "cxraug", *stage.argv(b, w)], env=_env(), start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    started = _first_write(w, proc)
    delay = rng.uniform(0, span)
    time.sleep(delay)
    killed = proc.poll() is None
    if killed:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    trial = Trial(stage.name, delay if killed and started else None)
    if not killed and proc.returncode != 0:
        trial.problems.append(f"exited {proc.returncode} before the kill")
        return trial
    trial.problems += [f"after the kill: {p}" for p in stage.check(w, reference)]
    for _ in range(3):
        argv = (stage.rerun or stage.argv)(b, w)
        code, text = rerun(argv)
        trial.reruns += 1
        if code == 0 or (code == 2 and any(s in text for s in DONE_ALREADY)):
            break
        if "Traceback" in text or code not in (0, 2):
            trial.problems.append(f"rerun {' '.join(argv[:1])} exited {code}: {text.strip()[-400:]}")
            return trial
    else:
        trial.problems.append(f"three reruns did not finish it: {text.strip()[-300:]}")
        return trial
    try:
        got = stage.digest(stage.output(w))
    except (OSError, ValueError, AssertionError) as e:  # the rerun's own words say why
        trial.problems.append(f"no result after the rerun (exit {code}): {e}; it said: {text.strip()[-400:]}")
        return trial
    if got != reference:
        trial.problems.append(f"result differs from a straight run: {_diff(got, reference)}")
    leftovers = [str(p.relative_to(w)) for p in w.rglob("*") if p.name.endswith((".partial", ".tmp", ".old"))]
    if leftovers:
        trial.problems.append(f"leftover staging files: {leftovers[:3]}")
    return trial


def _diff(a: dict, b: dict) -> str:
    keys = [k for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
    return "; ".join(f"{k}: {a.get(k)!r} != {b.get(k)!r}" for k in keys[:3])


# --- the study: many stages in one command -------------------------------------------------------
# Not in STAGES (tests/test_study.py runs it, once, beside its own straight run): a toy study on
# the built-in sample, one size, both generators, two ratios (so the ratio is chosen on
# validation), two classifier seeds.
TOY_STUDY_YAML = """\
compare_n: 20
compare_bootstrap: 50
compare_min_images: 10
compare_speed_images: 8
compare_metrics: [fid, kid]
compare_memorization: false
gen_sets:
  cgan: {batch_size: 16, z_dim: 16, g_ch: 4, d_ch: 4, max_ch: 16, embed_dim: 8, standing_stats_batches: 2,
         sample_every: 0}
  diffusion: {batch_size: 8, block_out_channels: [8, 16], sample_every: 0}
sample_sets:
  diffusion: {steps: 4}
bench_sets: {model: tiny, epochs: 1, bootstrap_draws: 200, plots: false}
"""
QUALITY = ("run", "class", "fid", "kid", "precision", "recall", "density", "coverage")
STUDY_COST_FIELDS = ("gen_cpu_min", "gen_wall_min", "cell_cpu_min")  # timings: differ run to run


def make_study_inputs(b: Path, run: Runner = cli_inprocess) -> Path:
    """B/sample32 (the built-in real sample at 32 px) and B/toy-study.yaml."""
    b.mkdir(parents=True, exist_ok=True)
    code, text = run(["prepare", "--source", "sample", "--size", "32", "--out", str(b / "sample32")])
    assert code == 0, text
    (b / "toy-study.yaml").write_text(TOY_STUDY_YAML)
    return b


def study_argv(b: Path, w: Path) -> list[str]:
    return ["study", "--data", str(b / "sample32"), "--rare", "No Finding", "--sizes", "10",
            "--gen-steps", "cgan=4,diffusion=2", "--seeds", "2", "--ratios", "+20,x1",
            "--set", "arms=[real,cgan,diffusion]", "--config", str(b / "toy-study.yaml"), "--out", str(w / "study")]  # fmt: skip


def digest_study(out: Path) -> dict:
    """Every number of study.csv but the timings, and each benchmark's and compare's results."""
    with open(out / "study.csv", newline="") as f:
        rows = [{k: v for k, v in r.items() if k not in STUDY_COST_FIELDS} for r in csv.DictReader(f)]
    found = {"rows": rows}
    for size in sorted(out.glob("n-*")):
        found[f"{size.name}/benchmark"] = sha(size / "benchmark" / "out" / "results.csv")
        with open(size / "compare" / "out" / "compare.csv", newline="") as f:  # quality, not timings or paths
            found[f"{size.name}/compare"] = [
                {k: v for k, v in r.items() if k.startswith(QUALITY)} for r in csv.DictReader(f)
            ]
        sel = size / "select" / "cell.json"
        if sel.is_file():
            found[f"{size.name}/chosen"] = json.loads(sel.read_text())["chosen"]
    return found


def check_study(out: Path, straight: dict) -> list[str]:
    """After a kill: every cell record is whole JSON, and a page, if written, says what a straight run says."""
    problems = []
    for rec in out.glob("n-*/*/cell.json"):
        try:
            json.loads(rec.read_text())
        except ValueError as e:
            problems.append(f"{rec} is not whole: {e}")
    if (out / "study.csv").is_file() and digest_study(out) != straight:
        problems.append(f"{out}/study.csv differs from a straight run")
    return problems


STUDY = Stage("study", study_argv, lambda w: w / "study", digest_study, lambda w, s: check_study(w / "study", s))
