"""A study's cells run as ``cxraug`` commands, each in a process of its own: which share of the
sizes this process takes (``--shard I/K`` or the launcher's rank), the environment a cell's
process gets, and the run itself (its output appended to the cell's log)."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from cxraug.errors import UserError

DIST_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "GROUP_RANK", "ROLE_RANK", "ROLE_WORLD_SIZE",
            "MASTER_ADDR", "MASTER_PORT", "GROUP_WORLD_SIZE", "TORCHELASTIC_RUN_ID")  # fmt: skip


def shard_of(shard: str | None) -> tuple[int, int]:
    """(index, count): ``--shard I/K``, else the launcher's RANK / WORLD_SIZE, else (0, 1)."""
    if shard:
        if not isinstance(shard, str):  # from Python: "I/K", as on the command line
            raise UserError(f"shard must be a str 'I/K', e.g. shard='0/4' (got {shard!r:.40})")
        i, slash, k = shard.partition("/")
        if not slash or not i.isdigit() or not k.isdigit() or int(k) < 1 or int(i) >= int(k):
            raise UserError(f"--shard {shard!r}: give I/K with 0 <= I < K, e.g. --shard 0/4")
        return int(i), int(k)
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def child_env() -> dict[str, str]:
    """A cell's command runs as one process of its own: the launcher's rank variables are removed,
    and under several GPUs each process keeps its own (LOCAL_RANK's) device."""
    env = {k: v for k, v in os.environ.items() if k not in DIST_ENV and not k.startswith("TORCHELASTIC_")}
    local, per_machine = os.environ.get("LOCAL_RANK"), int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    if "CXRAUG_THREADS" not in env and per_machine > 1:  # the machine's cores shared out, as a launched command does
        env["CXRAUG_THREADS"] = str(max(1, (os.cpu_count() or 1) // per_machine))
    if local is not None and per_machine > 1:
        visible = [d for d in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if d.strip()]
        env["CUDA_VISIBLE_DEVICES"] = visible[int(local)] if int(local) < len(visible) else local
    return env


COMMAND = "$ cxraug "  # the line a cell's log gets before each attempt's output


def attempts(log: Path) -> int:
    """How many times a cell's command was started: one ``COMMAND`` line each (at least 1)."""
    text = log.read_text(errors="replace") if log.is_file() else ""
    return max(1, sum(line.startswith(COMMAND) for line in text.splitlines()))


def cxraug(argv: list[str], log: Path) -> dict[str, float]:
    """Run ``cxraug ARGV`` as its own process, its output appended to ``log``; its wall and CPU
    seconds. A failure is one line: the command's own last error line, and where the log is."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a") as f:
        f.write(f"{COMMAND}{' '.join(argv)}\n")
        f.flush()
        r = subprocess.run([sys.executable, "-m", "cxraug", *argv], stdout=f, stderr=subprocess.STDOUT,
                           env=child_env(), check=False)  # fmt: skip
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if r.returncode != 0:
        lines = [ln for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
        last = next((ln for ln in reversed(lines) if ln.startswith("error")), lines[-1] if lines else "")
        raise UserError(f"`cxraug {argv[0]}` failed (exit {r.returncode}): {last.strip()[:300]} (log: {log})")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"seconds": round(time.perf_counter() - t0, 1), "cpu_seconds": round(cpu, 1)}


def sets_args(sets: dict[str, Any]) -> list[str]:
    """``--set key=value`` arguments of a command, values that are not strings as JSON."""
    import json

    out: list[str] = []
    for k, v in sets.items():
        out += ["--set", f"{k}={v if isinstance(v, str) else json.dumps(v)}"]
    return out
