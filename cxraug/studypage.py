"""The study's front page (index.html): the benchmark's answer first (did the synthetic images help
the rare classes, by how much, with its interval), then each generator's samples beside the
real training images they learned from, the generators' comparison in brief, and links to the
benchmark and compare pages. One self-contained file, built from what the benchmark and
compare folders already hold (results.json, compare.json, the synthetic sets)."""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from cxraug.classes import file_stem
from cxraug.errors import UserError
from cxraug.fsutil import atomic_write_text, check_new_output, read_json
from cxraug.page import Block, Box, Bullets, Heading, Image, Link, Para, html


@dataclass
class StudyPageConfig:
    benchmark: Path  # a `cxraug benchmark` folder
    out: Path  # the HTML file to write
    compare: Path | None = None  # a `cxraug compare` folder of the runs behind the synthetic sets
    note: str = ""  # a line under the title, e.g. the budget the study ran on
    columns: int = 10  # images per row of the sample grids
    overwrite: bool = False


def _benchmark_results(folder: Path) -> dict:
    path = folder / "results.json"
    if not path.is_file():
        raise UserError(f"{folder} is not a finished benchmark folder (no results.json); run `cxraug benchmark`")
    results = read_json(path)
    if "answer" not in results:
        raise UserError(
            f"{path} was written by an older cxraug; rebuild it with `cxraug benchmark --report-only {folder}`"
        )
    return results


def _compare_results(folder: Path) -> dict:
    path = folder / "compare.json"
    if not path.is_file():
        raise UserError(f"{folder} is not a compare folder (no compare.json); run `cxraug compare`")
    return read_json(path)


def _real_train_images(synthetic: dict, name: str, k: int) -> tuple[np.ndarray | None, str]:
    """The first k training images of class ``name`` of the dataset the generators learned
    from (from a synthetic set's provenance), and what they are."""
    from cxraug.data.prepared import open_prepared
    from cxraug.synthset import open_synthetic

    for path in synthetic.values():
        data_path = open_synthetic(path).provenance.get("data", {}).get("path")
        if not data_path or not Path(data_path, "dataset.json").is_file():
            continue
        data = open_prepared(Path(data_path))
        if name not in data.classes:
            continue
        idx = np.flatnonzero(data.labels("train") == data.classes.index(name))
        what = f"real: {k} of the {len(idx)} training images of {data.name}"
        return np.asarray(data.images("train")[idx[:k]]), what
    return None, "real: the generators' training set is no longer at the path their synthetic sets record"


def sample_grid(synthetic: dict, name: str, k: int) -> tuple[bytes, str] | None:
    """PNG of class ``name``: a row of real training images, then a row per synthetic set."""
    from cxraug.grid import class_grid
    from cxraug.synthset import open_synthetic

    rows, labels = [], []
    real, what = _real_train_images(synthetic, name, k)
    if real is not None and len(real):
        rows.append(real)
        labels.append("real (train)")
    for set_name, path in synthetic.items():
        syn = open_synthetic(path)
        if name not in syn.classes:
            continue
        imgs, _ = syn.load(classes=[name], limit_per_class=k)
        if len(imgs):
            rows.append(imgs)
            labels.append(f"{set_name} ({syn.provenance.get('plugin', '?')}, step {syn.provenance.get('step', '?')})")
    if len(rows) < 2:
        return None
    size = rows[0].shape[-1]
    img = class_grid(rows, labels, title=f"{name}: {what}; then each generator's first {k}", scale=max(1, 96 // size))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue(), f"{name}: real training images and synthetic images of each generator"


def compare_blocks(cmp: dict, href: str) -> list[Block]:
    """The generators in brief: what each cost, and compare's verdicts on its lead metric."""
    from cxraug.compare.report import verdict_lines
    from cxraug.metrics.registry import shown

    runs = [
        f"{r['label']} ({r['plugin']}): {r['training'].get('train_min') or 0:.1f} min of training steps, step "
        f"{r['step']}, {r['training'].get('images_seen') or 0:,} images seen; samples at "
        f"{r['sampling'].get('img_per_s') or 0:.0f} img/s"
        for r in cmp.get("runs", [])
    ]
    lead = shown(cmp.get("lead_metric", "fid")).label  # the metric compare ranked by
    verdicts = verdict_lines(
        SimpleNamespace(
            differences=cmp.get("differences", []),
            context=cmp,
            rows=cmp.get("rows", []),
            floor=cmp.get("floor_rows", []),
        )
    )
    n_real = ", ".join(f"{c} {n}" for c, n in (cmp.get("n_real") or {}).items())
    where = (
        f"{cmp.get('split', '?')} images ({n_real}), {cmp.get('n_per_class', '?')} synthetic images per class and run"
    )
    return [
        Heading(2, "The generators side by side"),
        Bullets(runs),
        Para(
            f"Sample quality ({lead} against the real {where}; lower is better; each run beside the real-vs-real floor):"
        ),
        Bullets(verdicts or [f"no {lead} verdicts (see the compare page)"]),
        Link(href, "The compare page: every metric with its interval, cost, and samples of each class"),
    ]


def build(cfg: StudyPageConfig) -> tuple[str, list[Block], dict[str, bytes]]:
    """The page's title, blocks and images."""
    res = _benchmark_results(cfg.benchmark)
    cmp = _compare_results(cfg.compare) if cfg.compare is not None else None
    here = Path(cfg.out).resolve().parent
    answer = res["answer"]
    stats = res.get("statistics", {})
    data_name = Path(res.get("dataset", {}).get("path", "?")).name
    title = f"cxraug study: {data_name}"
    blocks: list[Block] = [Para(cfg.note, css="note")] if cfg.note else []
    inner: list[Block] = [
        Heading(2, "Did the synthetic images help, beyond their controls and the best baseline?"),
        Para(answer["lead"]),
    ]
    for c in answer["classes"]:
        inner += [Para(c["header"]), Bullets(c["lines"])] if c["lines"] else [Bullets([c["header"]])]
    cfg_b = res.get("config", {})
    inner.append(
        Para(
            f"Benchmark: one classifier ({cfg_b.get('model', '?')}, {_count(res.get('budget', {}).get('steps'), 'step')} "
            f"for every arm) per arm and seed, {_count(len(res.get('seeds', [])), 'seed')}, on the held-out test split "
            f"({stats.get('test_images', '?')} images); each synthetic arm is compared with its copy control and the "
            "best cheap baseline (chosen on validation), Δ with its "
            f"{res.get('confidence', 0.95):.0%} bootstrap interval over test patients and seeds.",
            css="note",
        )
    )
    blocks.append(Box(inner))
    blocks.append(Link(_rel(cfg.benchmark / "summary.html", here), "The benchmark page: every arm, class and metric"))
    pngs: dict[str, bytes] = {}
    synthetic = {k: Path(v) for k, v in cfg_b.get("synthetic", {}).items()}
    # A set given by a relative path is read from the current folder, as the benchmark read it.
    gone = {k: p for k, p in synthetic.items() if not p.is_dir()}
    synthetic = {k: p for k, p in synthetic.items() if k not in gone}
    classes = [c for c in res.get("rare_classes", []) if synthetic]
    if classes or gone:
        blocks.append(Heading(2, "What the generators drew"))
    if gone:
        where = ", ".join(f"{k} ({p})" for k, p in gone.items())
        blocks.append(Para(f"Not shown, the synthetic set is not there (from {Path.cwd()}): {where}.", css="note"))
    for name in classes:
        grid = sample_grid(synthetic, name, cfg.columns)
        if grid is not None:
            file = f"samples_{file_stem(name)}.png"
            pngs[file] = grid[0]
            blocks.append(Image(file, grid[1]))
    if cmp is not None:
        blocks += compare_blocks(cmp, _rel(cfg.compare / "compare.html", here))
    auroc = cfg.benchmark / "class_auroc.png"
    if auroc.is_file():
        pngs["class_auroc.png"] = auroc.read_bytes()
        blocks += [Heading(2, "Per-class test AUROC of every arm"), Image("class_auroc.png", "per-class test AUROC")]
    return title, blocks, pngs


def _rel(target: Path, start: Path) -> str:
    return Path(os.path.relpath(Path(target).resolve(), start)).as_posix()


def write_study_page(cfg: StudyPageConfig) -> Path:
    out = Path(cfg.out)
    if out.suffix.lower() not in (".html", ".htm") or out.is_dir():
        raise UserError(f"--out {out} must name an .html file (e.g. study/index.html)")
    for inp in (cfg.benchmark, cfg.compare):
        if inp is not None and out.resolve().is_relative_to(Path(inp).resolve()):
            raise UserError(
                f"--out {out} lies inside the input {inp}; the report would replace or mix with that folder's "
                "own files (its summary.html): write it outside, e.g. study/index.html"
            )
    check_new_output(out, cfg.overwrite)
    title, blocks, pngs = build(cfg)
    atomic_write_text(out, html(title, blocks, pngs))
    return out


def _count(n: int | None, noun: str) -> str:
    """'1 epoch', '3 epochs', '? epochs'."""
    return f"? {noun}s" if n is None else f"{n} {noun}" + ("" if n == 1 else "s")
