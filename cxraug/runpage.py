"""A training run's own page, ``run.html`` in the run folder: the budget used (steps, training
and other seconds, the clock the time limit counts), the loss curves and any training-time FID
/ KID from metrics.jsonl, and the fixed-noise sample grids the loop writes, over time. One
self-contained file (cxraug.page: images inline, no script, no fetch), rewritten atomically at
every checkpoint by the training loop, and rebuilt on demand by ``cxraug report --run RUN``.

Everything on it is read back from the run folder, so a page rebuilt later says the same.
"""

from __future__ import annotations

import io
import math
import re
import time
from pathlib import Path

from cxraug import runs
from cxraug.errors import UserError
from cxraug.fsutil import atomic_write_text, read_jsonl
from cxraug.metric_names import METRIC_NAMES
from cxraug.page import Block, Heading, Image, Para, Table, html

PAGE = "run.html"
MAX_GRIDS = 8  # sample grids shown, evenly spaced over the run, the last one always
_GRID = re.compile(r"^step-(\d{7})\.png$")
_NOT_LOSSES = {"step", "kind", "img_per_s", "num_processes", "train_s", "elapsed_s"}
# What the page drew before evaluation records named their curves: runs trained then keep them.
_CURVES_BEFORE_NAMED = (*METRIC_NAMES, "precision", "recall", "density", "coverage")


def curve_keys(evals: list[dict]) -> list[str]:
    """The numbers of training-time evaluations worth a curve: each record names them (the metrics
    registry's curve outputs, ``curves``); records written before they did, the numbers the page
    drew then."""
    named = [k for r in evals for k in r.get("curves") or ()]
    return list(dict.fromkeys(named)) if named else list(_CURVES_BEFORE_NAMED)


def sample_grids(run: Path) -> list[tuple[int, Path]]:
    """(step, path) of every sample grid the run wrote, in step order."""
    d = run / runs.SAMPLES_DIR
    if not d.is_dir():
        return []
    return sorted((int(m.group(1)), p) for p in d.iterdir() if (m := _GRID.match(p.name)))


def spaced(items: list, k: int) -> list:
    """At most ``k`` items, evenly spaced, the first and the last kept."""
    if len(items) <= k:
        return list(items)
    picks = sorted({round(i * (len(items) - 1) / (k - 1)) for i in range(k)})
    return [items[i] for i in picks]


def _curves(records: list[dict], keys: list[str], title: str, ylabel: str) -> bytes:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 3.2), dpi=100, layout="constrained")
    ax = fig.subplots()
    for k in keys:
        pts = [(r["step"], r[k]) for r in records if isinstance(r.get(k), int | float) and math.isfinite(r[k])]
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], label=k, marker="o" if len(pts) < 20 else None)
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _budget_rows(config: dict, train: list[dict], stop: dict | None, ckpt: int | None) -> list[list[str]]:
    cfg = config.get("train", {})
    last = train[-1] if train else {}
    step = (stop or {}).get("step") or last.get("step") or 0
    cap = cfg.get("steps")
    limit = cfg.get("time_limit")
    clock = cfg.get("clock", "wall")
    train_s = (stop or {}).get("train_s", last.get("train_s"))
    rows = [["steps done", f"{step:,}" + (f" of {cap:,}" if isinstance(cap, int) and cap < 10**12 else "")]]
    unit = "CPU-seconds" if clock == "cpu" else "seconds"
    if train_s is not None:
        used = f"{train_s:,.0f} {unit}"
        if limit:
            used += f" of the {limit:g}-minute limit ({100 * train_s / (60 * limit):.0f}%)"
        rows.append(["time in training steps", used])
    if stop and stop.get("other_s") is not None:
        rows.append(["time outside them", f"{stop['other_s']:,.0f} s (grids, checkpoints, exports, evaluation)"])
    elif last.get("elapsed_s") is not None and train_s is not None:
        rows.append(
            ["time outside them", f"{last['elapsed_s'] - train_s:,.0f} s (grids, checkpoints, exports, evaluation)"]
        )
    rows.append(["clock the time limit counts", "CPU time of the process" if clock == "cpu" else "wall time"])
    if last.get("img_per_s") is not None:
        rows.append(
            ["speed (last log)", f"{last['img_per_s']:,.1f} images/s on {last.get('num_processes', 1)} process(es)"]
        )
    rows.append(["batch size", f"{cfg.get('batch_size', '?')} per process"])
    if stop:
        why = {"steps": "step cap reached", "time_limit": "time limit reached"}.get(stop.get("reason"), "stopped")
        rows.append(["state", f"finished at step {stop.get('step')}: {why}"])
    else:
        rows.append(["state", "training (or stopped before its end: `cxraug train-gen --resume` continues it)"])
    if ckpt is not None:
        rows.append(["last checkpoint", f"step {ckpt:,}"])
    return rows


def build_run_page(run: Path) -> str:
    """The page's HTML, from what the run folder holds now."""
    config = runs.read_run_config(run)
    records = read_jsonl(run / runs.METRICS) if (run / runs.METRICS).is_file() else []
    train = [r for r in records if r.get("kind") == "train"]
    evals = [r for r in records if r.get("kind") not in ("train", "stop")]
    stops = [r for r in records if r.get("kind") == "stop"]
    ckpts = runs.checkpoints(run)
    data = config.get("data", {})
    real = "" if data.get("real_data", True) else " (PHANTOM data, not real)"
    title = f"run {run.name}: {config.get('plugin')} on {data.get('name')}{real}"
    blocks: list[Block] = [
        Para(
            f"Updated {time.strftime('%Y-%m-%d %H:%M:%S %Z')} from {runs.METRICS} and {runs.SAMPLES_DIR}/ of this "
            f"run folder; {data.get('n_train', '?')} training images. Rebuild with `cxraug report --run {run}`.",
            css="note",
        ),
        Heading(2, "Budget used"),
        Table(
            ["budget", "used"],
            _budget_rows(config, train, stops[-1] if stops else None, ckpts[-1][0] if ckpts else None),
        ),
    ]
    pngs: dict[str, bytes] = {}
    losses = [k for k in dict.fromkeys(k for r in train for k in r) if k not in _NOT_LOSSES]
    blocks.append(Heading(2, "Loss curves"))
    if train and losses:
        pngs["losses.png"] = _curves(
            train,
            losses,
            f"losses and other values the plugin logs, every {config.get('train', {}).get('log_every', '?')} steps (one batch each)",
            "value",
        )
        blocks.append(Image("losses.png", "training losses against step"))
    else:
        blocks.append(Para("No step logged yet.", css="note"))
    blocks.append(Heading(2, "Training-time evaluation"))
    keys = [k for k in curve_keys(evals) if any(isinstance(r.get(k), int | float) for r in evals)]
    if keys:
        e = evals[-1]
        what = f"{e.get('split', 'val')} split, {e.get('n_real', '?')} real and {e.get('n_fake', '?')} generated images"
        for k in keys:  # one plot each: FID and KID live on different scales
            pngs[f"eval-{k}.png"] = _curves(evals, [k], f"{k} against step ({what})", k)
            blocks.append(Image(f"eval-{k}.png", f"{k} against step"))
    else:
        blocks.append(
            Para("Off (`--set fid_every=K` scores the generator on validation images every K steps).", css="note")
        )
    blocks.append(Heading(2, "Samples over time"))
    grids = spaced(sample_grids(run), MAX_GRIDS)
    if not grids:
        blocks.append(Para("No sample grid yet.", css="note"))
    else:
        blocks.append(Para(
            f"One row per class, the same noise at every step; {len(grids)} of {len(sample_grids(run))} grids shown "
            f"(every {config.get('train', {}).get('sample_every', '?')} steps and the last).", css="note"))  # fmt: skip
        for step, path in grids:
            pngs[path.name] = path.read_bytes()
            blocks.append(Image(path.name, f"samples at step {step}", f"step {step:,}"))
    return html(title, blocks, pngs)


def write_run_page(run: Path) -> Path:
    """Write (or replace) ``run/run.html`` atomically; returns its path."""
    out = Path(run) / PAGE
    for tmp in Path(run).glob(f".{PAGE}.*.tmp"):  # a write a kill interrupted (the run's lock: no other writer)
        tmp.unlink(missing_ok=True)
    atomic_write_text(out, build_run_page(Path(run)))
    return out


def rebuild(run: Path) -> Path:
    """``cxraug report --run RUN``: the page of an existing run, checked to be one."""
    run = Path(run)
    runs.read_run_config(run)  # one line for a folder that is not a run
    if not (run / runs.METRICS).is_file() and not sample_grids(run):
        raise UserError(f"{run} has not logged a step yet (no {runs.METRICS}); nothing to show")
    return write_run_page(run)
