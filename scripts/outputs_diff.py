"""Compare two output folders of scripts/refactor_outputs.sh (before and after a refactor).

    python scripts/outputs_diff.py BEFORE AFTER [--written-at PATH]

(``--written-at``: both folders were written at PATH and moved since: paths inside them and
every hash of a path, such as a prepared dataset's fingerprint, are then the same on both.)

Every file is compared after the parts that differ between any two runs are set aside: the
folder's own path, timings (keys and CSV columns named like seconds, minutes, rates, dates),
and in pages and logs the numbers next to a time unit. Prints each file that still differs
with its first differing lines, then the counts; exit 1 when a file differs or is missing on
one side. Images are compared byte for byte; checkpoints (.pt) and safetensors files by their
tensors and values, a checkpoint's clock set aside; lock files (a pid) and checksum files (of
files compared on their own) are not compared. Markdown table columns named like timings
(train min, img/s, peak MB) are set aside."""

from __future__ import annotations

import csv
import difflib
import io
import json
import re
import sys
from pathlib import Path

TIMING_KEY = re.compile(
    r"(^|_)(s|sec|seconds|min|minutes|wall|cpu|elapsed|time|date|when|started|finished|created|"
    r"per_s|img_per_s|rate|duration|hostname|host|pid|peak_mb|memory)($|_)|_s$|_min$|_at$|speed|timing|train_s|other_s",
    re.IGNORECASE,
)
TIME_TEXT = re.compile(
    r"\d[\d,.]*\s*(s|ms|sec|seconds|min|minutes|CPU-min|h|hours|img/s|images/s|steps/s|MB|MiB|GB)\b|"
    r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d(:\d\d)?(\.\d+)?([+-]\d\d:\d\d|Z)?|\d\d:\d\d:\d\d|eta \S+|\d+:\d\d(:\d\d)?",
)
SKIP = {"printed.txt", "SHA256SUMS"}  # the terminal transcript: read by eye, not compared
SKIP_SUFFIXES = {".lock", ".sha256"}
TIMING_COLUMN = re.compile(r"\bmin\b|img/s|\bMB\b|\bs\b|speed|sampling$", re.IGNORECASE)


def _skipped(path: Path) -> bool:
    return path.name in SKIP or path.suffix in SKIP_SUFFIXES


def _tensors(path: Path) -> list[str]:
    """A checkpoint or safetensors file as comparable lines: each tensor's hash, each value."""
    import hashlib

    import torch

    def walk(value: object, at: str) -> list[str]:
        if isinstance(value, torch.Tensor):
            data = value.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()
            return [f"{at}: {value.dtype} {tuple(value.shape)} {hashlib.sha256(data).hexdigest()[:16]}"]
        if isinstance(value, dict):
            return [line for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))
                    if not (k == "clock" or TIMING_KEY.search(str(k))) for line in walk(v, f"{at}/{k}")]  # fmt: skip
        if isinstance(value, list | tuple):
            return [line for i, v in enumerate(value) for line in walk(v, f"{at}[{i}]")]
        return [f"{at}: {value!r}"]

    if path.suffix == ".safetensors":
        from safetensors import safe_open

        with safe_open(str(path), "pt") as f:
            meta = _scrub(f.metadata() or {}, "")
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (a safe_open handle)
            return [f"metadata: {json.dumps(meta, sort_keys=True)}", *walk(tensors, "")]
    return walk(torch.load(path, map_location="cpu", weights_only=True), "")


def _markdown_tables(lines: list[str]) -> list[str]:
    """Markdown table rows with the cells under a timing-like header set aside."""
    out, drop = [], set()
    for i, line in enumerate(lines):
        if not line.startswith("|"):
            drop = set()
            out.append(line)
            continue
        cells = line.strip("|").split("|")
        below = lines[i + 1].replace("|", "").strip() if i + 1 < len(lines) else ""
        if "-" in below and set(below) <= set("-: "):  # a header row: the separator follows
            drop = {j for j, c in enumerate(cells) if TIMING_COLUMN.search(c.strip())}
        out.append("|".join("<t>" if j in drop else c for j, c in enumerate(cells)))
    return out


def _scrub(value: object, root: str) -> object:
    if isinstance(value, dict):
        return {k: ("<time>" if TIMING_KEY.search(k) else _scrub(v, root)) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v, root) for v in value]
    if isinstance(value, str):
        return TIME_TEXT.sub("<t>", value.replace(root, "<OUT>"))
    return value


def normalised(path: Path, root: Path) -> list[str] | bytes:
    """The comparable content of one file: lines of text, or the bytes of anything else."""
    suffix = path.suffix.lower()
    if suffix in {".pt", ".safetensors"}:
        return _tensors(path)
    raw = path.read_bytes()
    if suffix not in {".json", ".jsonl", ".csv", ".md", ".html", ".txt", ".yaml", ".tsv", ".log"}:
        return raw
    text = raw.decode("utf-8", errors="replace").replace(str(root.resolve()), "<OUT>").replace(str(root), "<OUT>")
    if suffix == ".json":
        try:
            return json.dumps(_scrub(json.loads(text), str(root)), indent=1, sort_keys=True).splitlines()
        except ValueError:
            pass
    if suffix == ".jsonl":
        out = []
        for line in text.splitlines():
            try:
                out.append(json.dumps(_scrub(json.loads(line), str(root)), sort_keys=True))
            except ValueError:
                out.append(line)
        return out
    if suffix == ".csv":
        rows = list(csv.reader(io.StringIO(text)))
        if rows:
            keep = [i for i, name in enumerate(rows[0]) if not TIMING_KEY.search(name)]
            return [",".join(TIME_TEXT.sub("<t>", r[i]) for i in keep if i < len(r)) for r in rows]
    lines = _markdown_tables(text.splitlines()) if suffix == ".md" else text.splitlines()
    return [TIME_TEXT.sub("<t>", line) for line in lines]


def main(argv: list[str]) -> int:
    written_at = None
    if len(argv) == 4 and argv[2] == "--written-at":  # both were written there, then moved
        written_at, argv = Path(argv[3]), argv[:2]
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    a, b = (Path(p) for p in argv)
    files_a = {p.relative_to(a) for p in a.rglob("*") if p.is_file() and not _skipped(p)}
    files_b = {p.relative_to(b) for p in b.rglob("*") if p.is_file() and not _skipped(p)}
    only = sorted(files_a ^ files_b)
    for rel in only:
        print(f"only in {'BEFORE' if rel in files_a else 'AFTER'}: {rel}")
    differ = 0
    for rel in sorted(files_a & files_b):
        x, y = normalised(a / rel, written_at or a), normalised(b / rel, written_at or b)
        if x == y:
            continue
        differ += 1
        if isinstance(x, bytes) or isinstance(y, bytes):
            print(f"differs (bytes): {rel}")
            continue
        lines = list(difflib.unified_diff(x, y, "BEFORE", "AFTER", n=0, lineterm=""))
        print(f"differs: {rel}\n  " + "\n  ".join(lines[2:12]))
    same = len(files_a & files_b) - differ
    print(f"{same} files identical (timings set aside), {differ} differ, {len(only)} on one side only")
    return 1 if differ or only else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
