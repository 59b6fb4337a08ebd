"""The study's page: the answer first in one sentence, then the curve of Δ AUROC against the
rare class's size N for each generator (against its copy control and against the best
baseline, with intervals), the generators' quality against N (FID of the same number of
synthetic images at every N, beside the real-vs-real floor, from compare), sample grids per N,
and what each cell cost.

One table model (:class:`StudyRow` -> :class:`cxraug.tables.ReportTable`) gives study.md,
study.html (self-contained), the terminal's table and study.csv (one row per size, generator
and comparison), so all four say the same numbers."""

from __future__ import annotations

import csv
import io
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from cxraug.fsutil import atomic_write_bytes, atomic_write_text, json_number, read_json
from cxraug.page import Bullets, Heading, Image, Link, Para, html, markdown
from cxraug.study.provenance import code_line, cost_lines
from cxraug.tables import Cell, ReportTable, TableColumn, cells, page_block

if TYPE_CHECKING:
    from cxraug.study.cells import SizeCells
    from cxraug.study.config import StudyConfig
    from cxraug.study.estimate import Estimate

COMPARISONS = ("copy control", "best baseline")


@dataclass(frozen=True)
class StudyRow:
    n: int  # rare-class training images
    generator: str
    replicates: int  # generator training seeds
    ratio: str  # chosen on validation
    comparison: str  # "copy control" | "best baseline"
    against: str  # the arm compared with
    delta_auroc: float | None  # test AUROC of the rare class: generator arm - against
    low: float | None
    high: float | None
    p_adjusted: float | None
    verdict: str  # this comparison's word: better, worse, no evidence..., no verdict: ...
    answer: str  # the arm's answer at this N (helped = better than both)
    fid: float | None  # compare: compare_n synthetic images against the validation images of the rare class
    fid_low: float | None
    fid_high: float | None
    fid_n_real: int | None  # the validation images it was computed against
    fid_floor: float | None  # N real training images (at most compare_n) scored the same way
    floor_n: int | None
    fid_minus_floor: float | None  # only where the floor drew as many images as the run (compare)
    fid_minus_floor_low: float | None
    fid_minus_floor_high: float | None
    gen_cpu_min: float  # training the generator's replicates (all of them)
    gen_wall_min: float
    cell_cpu_min: float  # everything at this N for this generator's share: train + synth
    test_patients: int


QUALITY = ("fid", "fid_low", "fid_high", "fid_n_real", "fid_floor", "floor_n", "fid_minus_floor",
           "fid_minus_floor_low", "fid_minus_floor_high")  # fmt: skip


def _quality(compare_out: Path | None, generator: str, rare: str) -> dict[str, float | int | None]:
    """The generator's FID row of the rare class from the size's compare, and its floor's n."""
    q: dict[str, float | int | None] = dict.fromkeys(QUALITY)
    if compare_out is None or not (compare_out / "compare.json").is_file():
        return q
    res = read_json(compare_out / "compare.json")
    row = next((r for r in res.get("rows", []) if r["run"] == generator and r["class"] == rare), {})
    floor = next((r for r in res.get("floor_rows", []) if r["class"] == rare), {})
    q.update({k: json_number(row.get(k)) for k in ("fid", "fid_low", "fid_high", "fid_floor", "fid_minus_floor",
                                           "fid_minus_floor_low", "fid_minus_floor_high")})  # fmt: skip
    q["fid_n_real"] = int(row["n_real"]) if json_number(row.get("n_real")) is not None else None
    q["floor_n"] = int(floor["n_fake"]) if q["fid_floor"] is not None and json_number(floor.get("n_fake")) else None
    run_n = json_number(row.get("n_fake")) or 0
    if q["floor_n"] is not None and q["floor_n"] < run_n:  # a short floor, from a compare before it said so
        q |= dict.fromkeys(("fid_minus_floor", "fid_minus_floor_low", "fid_minus_floor_high"))
    return q


def study_rows(cfg: StudyConfig, sizes: list[SizeCells]) -> list[StudyRow]:
    from cxraug.benchmark.primary import comparison_word

    rows: list[StudyRow] = []
    for sc in sizes:
        res = read_json(sc.benchmark / "results.json")
        patients = int(res.get("statistics", {}).get("test_patients") or 0)
        answers = {(a["class"], a["arm"]): a["answer"] for a in res.get("answers", [])}
        for g in cfg.generators:
            arm = f"{g}@{sc.chosen[g]}"
            q = _quality(sc.compare, g, cfg.rare)
            gen_cost = [v for k, v in sc.cost.items() if k.startswith(f"gen-{g}-")]
            syn_cost = [v for k, v in sc.cost.items() if k.startswith(f"synth-{g}-")]
            gen_cpu = sum(c["cpu_seconds"] for c in gen_cost) / 60
            for comp in COMPARISONS:
                c = next((p for p in res.get("primary", []) if p["arm"] == arm and p["class"] == cfg.rare
                          and p["against"] == comp), None)  # fmt: skip
                d = (c or {}).get("diff", {})
                verdict = comparison_word(c["verdict"]) if c else "not compared"
                rows.append(StudyRow(
                    n=sc.n, generator=g, replicates=len(sc.runs[g]), ratio=sc.chosen[g], comparison=comp,
                    against=(c or {}).get("other") or "-", delta_auroc=json_number(d.get("mean")), low=json_number(d.get("low")),
                    high=json_number(d.get("high")), p_adjusted=json_number(d.get("p_adjusted")), verdict=verdict,
                    answer=answers.get((cfg.rare, arm), "-"), **q, gen_cpu_min=round(gen_cpu, 2),
                    gen_wall_min=round(sum(c["seconds"] for c in gen_cost) / 60, 2),
                    cell_cpu_min=round(gen_cpu + sum(c["cpu_seconds"] for c in syn_cost) / 60, 2),
                    test_patients=patients,
                ))  # fmt: skip
    return rows


def short_floor_note(cfg: StudyConfig, rows: list[StudyRow]) -> str:
    """Why FID − floor is missing where a size's floor drew fewer images than the generators."""
    if not any(r.floor_n is not None and r.floor_n < cfg.compare_n for r in rows):
        return ""
    return (
        f" Where N < {cfg.compare_n} the floor drew fewer images than the generators, and FID falls as n grows, so "
        "that floor sits high and FID − floor would mix two sample sizes: study.csv gives FID − floor only where "
        "the two drew the same number."
    )


def no_floor_note(cfg: StudyConfig, rows: list[StudyRow]) -> str:
    """Why a size has no FID above the floor: its floor draws the N real training images the
    generators saw, and compare scores none below --min-images (the column said only "-")."""
    few = sorted({r.n for r in rows if r.fid_floor is None and r.n < cfg.compare_min_images})
    if not few:
        return ""
    return (
        f" No floor at N = {', '.join(map(str, few))}: the floor draws the N real {cfg.rare} training images the "
        f"generators saw, fewer than compare's minimum of {cfg.compare_min_images} (`compare_min_images`); "
        "the runs' FID is shown alone."
    )


def _n_real(rows: list[StudyRow]) -> str:
    ns = sorted({r.fid_n_real for r in rows if r.fid_n_real is not None})
    return f" {ns[0]}" if len(ns) == 1 else ""


def _signed(v: float | None) -> str:
    return "-" if v is None else f"{v:+.3f}"


def _interval(lo: float | None, hi: float | None, signed: bool = True) -> str:
    if lo is None or hi is None:
        return ""
    return f"[{lo:+.3f}, {hi:+.3f}]" if signed else f"[{lo:.1f}, {hi:.1f}]"


def report_table(cfg: StudyConfig, rows: list[StudyRow]) -> ReportTable:
    t = ReportTable(
        f"cxraug study: {cfg.rare} at {len(cfg.sizes)} sizes; test AUROC of {cfg.rare}, generator arm minus "
        "its copy control / the best baseline (chosen on validation)",
        [TableColumn("N", number=True), TableColumn("generator", align="left", number=False),
         TableColumn("ratio", align="left", number=False, drop=3),
         TableColumn("against", align="left", number=False), TableColumn("Δ AUROC (test)", "Δ AUROC\n(test)"),
         TableColumn("adjusted p", "adj. p", drop=2), TableColumn("verdict", align="left", number=False),
         TableColumn("FID (val)", "FID\n(val)", drop=1),
         TableColumn("real floor (its n)", "real floor\n(its n)", drop=1),
         TableColumn("generator CPU-min (sum of its training runs)", "gen.\nCPU-min\n(sum)", drop=4)],
    )  # fmt: skip
    for r in rows:
        t.rows.append([
            *cells(str(r.n), f"{r.generator} (x{r.replicates})" if r.replicates > 1 else r.generator, r.ratio,
                   f"{r.comparison} ({r.against})"),
            Cell(_signed(r.delta_auroc), _interval(r.low, r.high)),
            Cell("-" if r.p_adjusted is None else f"{r.p_adjusted:.3f}"),
            Cell(r.verdict, style={"better": "green", "worse": "red"}.get(r.verdict, "")),
            Cell("-" if r.fid is None else f"{r.fid:.1f}", _interval(r.fid_low, r.fid_high, signed=False)),
            Cell("-" if r.fid_floor is None else f"{r.fid_floor:.1f} ({r.floor_n})"),
            Cell(f"{r.gen_cpu_min:.1f}"),
        ])  # fmt: skip
    return t


def _sizes_text(ns: list[int]) -> str:
    return "N = " + ", ".join(str(n) for n in ns)


def answer_sentence(cfg: StudyConfig, rows: list[StudyRow]) -> str:
    """The answer in one sentence: per generator, the sizes where it helped (beat both its copy
    control and the best baseline, adjusted), did worse than one of them (saying which), or
    showed no evidence."""
    parts = []
    for g in cfg.generators:
        mine = {r.n: r.answer for r in rows if r.generator == g}
        helped = [n for n, a in mine.items() if a == "helped"]
        hurt = [n for n, a in mine.items() if a == "hurt"]
        none = [n for n, a in mine.items() if a.startswith("no verdict")]
        rest = [n for n in mine if n not in helped + hurt + none]
        bits = []
        if helped:
            bits.append(f"helped at {_sizes_text(helped)}")
        said: set[int] = set()
        for comp in COMPARISONS:  # "hurt" is the benchmark's word; say which comparison it lost
            lost = [n for n in hurt if any(r.n == n and r.generator == g and r.comparison == comp
                                           and r.verdict == "worse" for r in rows)]  # fmt: skip
            if lost:
                bits.append(f"worse than {'its' if comp == 'copy control' else 'the'} {comp} at {_sizes_text(lost)}")
                said.update(lost)
        if unsaid := [n for n in hurt if n not in said]:  # rows missing: the benchmark's word alone
            bits.append(f"hurt at {_sizes_text(unsaid)}")
        if rest:
            bits.append(f"no evidence it helps at {_sizes_text(rest)}")
        if none:
            why = next(a for n, a in mine.items() if n == none[0]).removeprefix("no verdict: ")
            bits.append(f"no verdict at {_sizes_text(none)} ({why})")
        parts.append(f"**{g}** {'; '.join(bits)}")
    return (
        f"Did synthetic {cfg.rare} images help beyond their copy control and the best baseline? "
        + "; ".join(parts)
        + "."
    )


def plot_curve(cfg: StudyConfig, rows: list[StudyRow], path: Path) -> bytes:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 3.8), dpi=100, layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    ns = sorted({r.n for r in rows})
    for ax, comp in zip(axes, COMPARISONS, strict=True):
        for k, g in enumerate(cfg.generators):
            mine = sorted((r for r in rows if r.generator == g and r.comparison == comp), key=lambda r: r.n)
            x = np.array([r.n for r in mine], dtype=float) * (1 + 0.04 * (k - (len(cfg.generators) - 1) / 2))
            y = np.array([np.nan if r.delta_auroc is None else r.delta_auroc for r in mine])
            lo = np.array([np.nan if r.low is None else r.low for r in mine])
            hi = np.array([np.nan if r.high is None else r.high for r in mine])
            err = np.vstack([np.where(np.isnan(lo), 0, y - lo), np.where(np.isnan(hi), 0, hi - y)])
            ax.errorbar(x, y, yerr=err, marker="o", capsize=3, label=g)
        ax.axhline(0, color="grey", lw=0.8)
        ax.set_xscale("log")
        ax.set_xticks(ns, [str(n) for n in ns])
        ax.minorticks_off()
        ax.set_xlabel(f"{cfg.rare}: real training images (N)")
        ax.set_title(f"vs its {comp}")
    axes[0].set_ylabel(f"Δ test AUROC of {cfg.rare}")
    axes[0].legend(title="generator")
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    atomic_write_bytes(path, buf.getvalue())
    return buf.getvalue()


def plot_quality(cfg: StudyConfig, rows: list[StudyRow], path: Path) -> bytes:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5, 3.6), dpi=100, layout="constrained")
    ax = fig.add_subplot()

    def col(mine: list[StudyRow], key: str) -> np.ndarray:
        return np.array([np.nan if getattr(r, key) is None else getattr(r, key) for r in mine], dtype=float)

    for g in cfg.generators:
        mine = sorted({r.n: r for r in rows if r.generator == g}.values(), key=lambda r: r.n)
        y, lo, hi = col(mine, "fid"), col(mine, "fid_low"), col(mine, "fid_high")
        err = np.vstack([np.where(np.isnan(lo), 0, y - lo), np.where(np.isnan(hi), 0, hi - y)])
        ax.errorbar([r.n for r in mine], y, yerr=err, marker="o", capsize=3, label=f"{g} ({cfg.compare_n} images)")
    # One floor per size (it depends on the real images only): N of them, at most compare_n.
    floors = sorted({r.n: r for r in rows if r.fid_floor is not None}.values(), key=lambda r: r.n)
    if floors:
        ax.plot([r.n for r in floors], col(floors, "fid_floor"), "x:", color="grey",
                label="real floor (N training images)")  # fmt: skip
    ns = sorted({r.n for r in rows})
    ax.set_xscale("log")
    ax.set_xticks(ns, [str(n) for n in ns])
    ax.minorticks_off()
    ax.set_ylim(bottom=0)
    ax.set_xlabel(f"{cfg.rare}: real training images (N)")
    ax.set_ylabel("FID against validation (lower is better)")
    ax.legend(title="generator")
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    atomic_write_bytes(path, buf.getvalue())
    return buf.getvalue()


def sample_grid(cfg: StudyConfig, sc: SizeCells) -> bytes | None:
    """Row 1: real training images of the rare class at this N; then each generator's first
    replicate's synthetic images."""
    from cxraug.data.prepared import open_prepared
    from cxraug.grid import class_grid
    from cxraug.synthset import open_synthetic

    k = cfg.grid_columns
    data = open_prepared(sc.data)
    idx = np.flatnonzero(data.labels("train") == data.classes.index(cfg.rare))[:k]
    rows, labels = [np.asarray(data.images("train")[idx])], [f"real ({len(idx)} of {sc.n})"]
    for g in cfg.generators:
        imgs, _ = open_synthetic(sc.sets[g][0]).load(classes=[cfg.rare], limit_per_class=k)
        rows.append(imgs)
        labels.append(g)
    img = class_grid(rows, labels, title=f"N = {sc.n}: {cfg.rare}", scale=max(1, 64 // data.size))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


CSV_FIELDS = [f for f in StudyRow.__dataclass_fields__]


def to_csv(rows: list[StudyRow]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_FIELDS, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if v is None else v) for k, v in asdict(r).items()})
    return buf.getvalue()


def _rel(target: Path, start: Path) -> str:
    import os

    return Path(os.path.relpath(Path(target).resolve(), Path(start).resolve())).as_posix()


def write_page(cfg: StudyConfig, out: Path, sizes: list[SizeCells], est: Estimate | None = None) -> Path:
    rows = study_rows(cfg, sizes)
    table = report_table(cfg, rows)
    pngs = {"curve.png": plot_curve(cfg, rows, out / "curve.png"),
            "quality.png": plot_quality(cfg, rows, out / "quality.png")}  # fmt: skip
    first = read_json(sizes[0].benchmark / "results.json")
    budget = first.get("budget", {})
    seeds = len(cfg.seeds)
    blocks = [
        Heading(2, "The answer"),
        Para(answer_sentence(cfg, rows)),
        Para(
            f"Each generator ({', '.join(cfg.generators)}; {len(cfg.gen_seeds)} training seed(s) each, "
            f"{cfg.budget_text()} per run) was trained on the reduced training set alone at each N; its "
            f"synthetic {cfg.rare} images were added at the ratio chosen on validation patients only "
            f"({', '.join(cfg.ratios)}). The benchmark trained one classifier per arm and seed ({seeds} seeds, "
            f"{budget.get('steps', '?')} steps of batch {budget.get('batch_size', '?')} for every arm at the first N) "
            f"and read the test split once per run ({rows[0].test_patients if rows else '?'} test patients); "
            "Δ with its 95% paired bootstrap interval over test patients, seeds"
            + (
                " and generator replicates"
                if len(cfg.gen_seeds) > 1
                else " (one training seed per generator: the interval covers that one trained generator, "
                "not another training run of it)"
            )
            + "; 'helped' means better than both its copy control and the best baseline, Holm-adjusted. The "
            "verdict rests on the adjusted p (a t reference below 5 seeds), not on the interval, which is "
            "unadjusted: with few seeds an interval can exclude zero without a verdict.",
            css="note",
        ),
        Heading(2, f"Δ AUROC of {cfg.rare} against N"),
        Image("curve.png", "Δ test AUROC against N, per generator, vs its copy control and the best baseline"),
        page_block(table, caption="One row per size, generator and comparison; study.csv holds the same rows."),
        Heading(2, "The generators' quality against N"),
        Image("quality.png", "FID against N (validation images), beside the real-vs-real floor"),
        Para(
            f"FID of {cfg.compare_n} synthetic {cfg.rare} images per generator against the{_n_real(rows)} validation "
            f"images of {cfg.rare}, from `cxraug compare`: the same images and n at every N, so comparable along N. "
            f"Beside it the real-vs-real floor: the N real training images (at most {cfg.compare_n}) scored the same "
            "way." + short_floor_note(cfg, rows) + no_floor_note(cfg, rows),
            css="note",
        ),
        Heading(2, "What the generators drew"),
    ]
    for sc in sizes:
        grid = sample_grid(cfg, sc)
        if grid is not None:
            name = f"samples_n{sc.n:04d}.png"
            pngs[name] = grid
            atomic_write_bytes(out / name, grid)
            blocks.append(Image(name, f"N = {sc.n}: real {cfg.rare} training images, then each generator's"))
    blocks += [
        Heading(2, "Cost per cell"),
        Bullets(cost_lines(cfg, sizes)),
        Para(
            "CPU-min: CPU time of the cell's command (all its threads); in brackets its wall-clock minutes.", css="note"
        ),
        Heading(2, "Where each number comes from"),
    ]
    for sc in sizes:  # relative links: the study folder may move
        blocks += [Link(_rel(sc.benchmark / "summary.html", out), f"N = {sc.n}: the benchmark page (every arm)"),
                   Link(_rel(sc.compare / "compare.html", out), f"N = {sc.n}: the compare page (every metric)")]  # fmt: skip
    blocks.append(Para(code_line(out), css="note"))
    if est is not None:
        blocks.append(Para(f"Estimated before the work: {est.text()}.", css="note"))
    title = f"cxraug study: {cfg.rare} on {Path(cfg.data).name}"
    atomic_write_text(out / "study.md", markdown(title, blocks))
    atomic_write_text(out / "study.csv", to_csv(rows))
    atomic_write_text(out / "study.html", html(title, blocks, pngs))
    return out / "study.html"
