"""What compare.md says: its tables, context and verdict lines, and the Markdown page.

The Markdown and HTML pages are built from the same tables (``tables``), so they say the same;
:mod:`cxraug.compare.output` writes the whole folder.
"""

from __future__ import annotations

from typing import Any

from cxraug.compare.core import CompareResult
from cxraug.metrics import registry
from cxraug.metrics.registry import floor_outputs, interval_outputs, output, shown
from cxraug.significance import format_p
from cxraug.tables import Cell, ReportTable, TableColumn, cells, to_markdown


def _metric_columns() -> tuple[str, ...]:
    """compare's metric columns in registry order: each output with a bootstrap interval brings
    its bounds (fid, fid_low, fid_high), the floor outputs (FID, KID, FD_cxr, KID_cxr) their
    floor and value - floor with its bounds; the others (kid_std, kid_subset_size) stand alone."""
    with_interval, floor = set(interval_outputs(list(registry.METRICS))), set(floor_outputs())
    out: list[str] = []
    for o in (o for m in registry.METRICS.values() for o in m.csv_columns):
        out += [o, f"{o}_low", f"{o}_high"] if o in with_interval else [o]
        if o in floor:
            out += [f"{o}_floor", f"{o}_minus_floor", f"{o}_minus_floor_low", f"{o}_minus_floor_high"]
    return tuple(out)


def csv_columns() -> tuple[str, ...]:
    """compare.csv's columns (read from the registry when written)."""
    return (
        "run", "class", "split", "size", "n_real", "n_fake", "status", *_metric_columns(),
        "mem_share_pixels", "mem_share_features", "mem_near_copies",
        "plugin", "step", "train_steps_images", "train_min", "train_clock", "train_img_per_s", "export_parameters",
        "sample_img_per_s", "sample_peak_mb", "extractor", "weights_sha256",
    )  # fmt: skip


def fmt(v: Any, metric: str) -> str:
    """A metric's value as every compare table shows it (the registry's scale and digits)."""
    return shown(metric).text(v)


def number(v: Any, digits: int = 1) -> str:
    if v is None:
        return "-"
    return f"{v:,.{digits}f}" if isinstance(v, float) else f"{v:,}"


def quality_outputs(result: CompareResult) -> list[str]:
    """The numbers the quality table shows, in the metrics' order (not spreads or subset sizes)."""
    return [o.name for m in result.context["metrics"] for o in registry.METRICS[m].outputs if o.table]


def _value_cell(r: dict[str, Any], o: str, key: str | None = None) -> Cell:
    """value [interval] of output ``o`` (``key``: the row's key, e.g. fid_minus_floor)."""
    key = key or o
    if r.get(key) is None:
        return Cell("-")
    iv = f"[{fmt(r[f'{key}_low'], o)}, {fmt(r[f'{key}_high'], o)}]" if r.get(f"{key}_low") is not None else ""
    return Cell(fmt(r[key], o), iv)


def _without_real(name: str) -> bool:
    """An output with a value where the row has too few real images (fidelity needs no real side)."""
    o = output(name)
    return o is not None and o.without_real


def cost_table(result: CompareResult) -> ReportTable:
    columns = [TableColumn("run", align="left", number=False), TableColumn("plugin", align="left", number=False, drop=3),
               TableColumn("step", drop=4), TableColumn("images seen", terminal=False),
               TableColumn("train min", "train\nmin"), TableColumn("train img/s", "train\nimg/s", drop=2),
               TableColumn("params", drop=1), TableColumn("sampling", align="left", number=False, terminal=False),
               TableColumn("sample img/s", "sample\nimg/s"), TableColumn("sample peak MB", "peak\nMB", drop=2)]  # fmt: skip
    rows = []
    for r in result.runs:
        t, s = r["training"], r["sampling"]
        opts = ", ".join(f"{k}={v}" for k, v in (r.get("sampling_options") or {}).items() if v is not None) or "-"
        rows.append(cells(r["label"], str(r["plugin"]), number(r["step"]), number(t["images_seen"]),
                          train_minutes(t), number(t["train_img_per_s"]), number(r["export_parameters"]),
                          opts, number(s["img_per_s"]), number(s["peak_mb"])))  # fmt: skip
    measure = result.runs[0]["sampling"]["memory_measure"] if result.runs else ""
    title = (
        f"Cost: training from each run's metrics.jsonl (training-step time, cumulative over resumes; "
        f"'cpu': CPU-minutes of the process, for runs trained with clock=cpu, else wall minutes); "
        f"sampling measured now on {result.runs[0]['sampling']['device'] if result.runs else '?'} "
        f"after a warm-up batch; peak memory = {measure}"
    )
    return ReportTable(title, columns, rows)


def train_minutes(t: dict[str, Any]) -> str:
    """Training minutes, marked when they are CPU-minutes (a clock=cpu run): the two differ by
    up to the thread count, so a table mixing them must say which is which."""
    cell = number(t["train_min"], 2)
    return f"{cell} cpu" if t.get("clock") == "cpu" and t["train_min"] is not None else cell


def quality_table(result: CompareResult, floor: bool = False, replicates: bool = False) -> ReportTable:
    """Per class and arm (a run, or the mean of an arm's replicates): each metric [interval];
    FID, KID, FD_cxr and KID_cxr followed by the real-vs-real floor of the class and
    value - floor [paired interval]. ``floor``: the floor's own rows instead (what real training
    images score); ``replicates``: each replicate of the arms of several runs, alone."""
    outs, floor_outs = quality_outputs(result), floor_outputs()
    conf = result.context["bootstrap"]["confidence"]
    floor = floor or replicates  # neither has floor columns
    columns = [TableColumn("class", align="left", number=False), TableColumn("run", align="left", number=False),
               TableColumn("n real", terminal=False), TableColumn("n fake", terminal=False)]  # fmt: skip
    for o in outs:
        columns.append(TableColumn(shown(o).label, drop=shown(o).drop))
        if o in floor_outs and not floor:
            columns += [TableColumn(f"{shown(o).label} floor", drop=shown(o).drop + 3),
                        TableColumn(f"{shown(o).label} - floor", drop=shown(o).drop + 2)]  # fmt: skip
    if not floor:
        columns.append(TableColumn("copy-like px/feat", terminal=False))
    rows = []
    for r in result.replicates if replicates else result.floor if floor else result.rows:
        row = cells(r["class"], r["run"], str(r["n_real"]), str(r["n_fake"]))
        for o in outs:
            if r["status"] != "ok" and not _without_real(o):
                row += [Cell("too few")] * (3 if o in floor_outs and not floor else 1)
                continue
            row.append(_value_cell(r, o))
            if o in floor_outs and not floor:
                row += [Cell(fmt(r.get(f"{o}_floor"), o)), _value_cell(r, o, f"{o}_minus_floor")]
        if not floor:
            sp, sf = r.get("mem_share_pixels"), r.get("mem_share_features")
            row.append(Cell("-" if sp is None or sf is None else f"{sp:.0%} / {sf:.0%}"))
        rows.append(row)
    if replicates:
        title = (f"Per replicate: each run of an arm alone, one trained generator (value [{conf:.0%} interval over "
                 "real patients and samples only])")  # fmt: skip
    elif floor:
        title = (f"Real-vs-real floor per class: real training images scored as a run is, same split and n where "
                 f"the class has n (value [{conf:.0%} bootstrap interval])")  # fmt: skip
    else:
        title = (f"Quality per class (value [{conf:.0%} bootstrap interval]; floor: real training images, same n; a "
                 "class with fewer training images than n has no FID/FD_cxr - floor)")  # fmt: skip
    return ReportTable(title, columns, rows)


def difference_table(result: CompareResult) -> ReportTable:
    """The interval is each difference's own (unadjusted); the verdict ("better") needs the
    Holm-adjusted p over the whole family, shown beside it, so an interval that excludes 0 can
    still read "no difference"."""
    conf = result.context["bootstrap"]["confidence"]
    header = ["class", "metric", "A - B", "diff", "interval", "excludes 0", "Holm p (m)", "better"]
    rows = []
    for d in result.differences:
        o = d["metric"]
        iv = "-" if d["low"] is None else f"[{fmt(d['low'], o)}, {fmt(d['high'], o)}]"
        ex = {True: "yes", False: "no", None: "-"}[d["excludes_zero"]]
        adj = "-" if d.get("p_adjusted") is None else f"{format_p(d['p_adjusted'])} ({d['family']})"
        better = d["better"] or (d["reason"] or "-")
        rows.append(
            cells(d["class"], shown(o).label, f"{d['run_a']} - {d['run_b']}", fmt(d["diff"], o), iv, ex, adj, better)
        )
    title = (
        f"Paired differences per class ({conf:.0%} interval over the same resamples, unadjusted; "
        f"better: Holm-adjusted p below {1 - conf:.2g} over the m comparisons)"
    )
    return ReportTable(title, [TableColumn(h) for h in header], rows)


def downstream_table(result: CompareResult) -> ReportTable | None:
    if not result.downstream:
        return None
    header = ["run", "arm", "class", "metric", "diff vs " + str(result.downstream[0]["reference"]), "interval", "note"]
    rows = []
    for d in result.downstream:
        iv = "-" if d["low"] is None else f"[{d['low']:+.3f}, {d['high']:+.3f}]"
        diff = "-" if d["diff"] is None else f"{d['diff']:+.3f}"
        rows.append(cells(d["run"], d["arm"], str(d["class"]), d["metric"], diff, iv, d["reason"]))
    title = "Downstream: benchmark arms from these runs (test split of the benchmark)"
    return ReportTable(title, [TableColumn(h) for h in header], rows)


def tables(result: CompareResult) -> list[ReportTable]:
    out = [cost_table(result), quality_table(result),
           *([quality_table(result, replicates=True)] if result.replicates else []),
           *([quality_table(result, floor=True)] if result.floor else []), difference_table(result)]  # fmt: skip
    down = downstream_table(result)
    return [*out, down] if down else out


def context_lines(result: CompareResult) -> list[str]:
    ctx = result.context
    lines = [
        f"Dataset {ctx['data']['name']} ({ctx['data']['path']}, fingerprint {ctx['data']['fingerprint'][:12]}), "
        f"split {ctx['split']}, {ctx['size']} px; {ctx['n_per_class']} synthetic images per class per run, "
        f"noise seed {ctx['seed']}; extractor {ctx['extractor']} (weights sha256 {str(ctx['weights_sha256'])[:12]}).",
        "Every run is scored on the same real images and features (computed once): "
        + ", ".join(f"{c} {n}" for c, n in ctx["n_real"].items())
        + " real images.",
        f"Intervals: {ctx['bootstrap']['resamples']} bootstrap resamples (seed {ctx['bootstrap']['seed']}), "
        f"{ctx['bootstrap']['method']}.",
    ]
    if ctx.get("floor"):
        lines.append(f"Floor: {ctx['floor']}.")
    several = {a: reps for a, reps in (ctx.get("arms") or {}).items() if len(reps) > 1}
    if several:
        arms = "; ".join(f"{a}: {len(reps)} runs ({', '.join(reps)})" for a, reps in several.items())
        lines.append(f"Arms of replicated runs: {arms}. Replicates: {ctx['replicates_method']}.")
    elif ctx.get("arms"):
        lines.append("Every arm is one trained generator: the intervals do not include training randomness "
                     "(compare NAME=RUN1,RUN2,... for runs trained with other seeds).")  # fmt: skip
    if not ctx["data"]["real_data"]:
        lines.insert(0, "**The dataset is NOT real data.**")
    if ctx.get("warning"):
        lines.insert(0, f"**{ctx['warning']}**")
    lines += ctx.get("notes") or []
    return lines


def lead_line(result: CompareResult) -> str:
    """Which metric the verdicts rank by, and why."""
    lead = result.context.get("lead_metric", "fid")
    if lead == "fd_cxr":
        return ("Ranked by FD_cxr: the Fréchet distance in the features of the reference classifier trained on this "
                "dataset's chest X-rays, the metric a chest X-ray reader should trust most here; FID (Inception, "
                "trained on photographs) is in the tables.")  # fmt: skip
    return ("Ranked by FID (Inception features, trained on photographs): no reference classifier was asked for; "
            "--metrics fid,kid,pr,dc,fd_cxr ranks by FD_cxr, in this dataset's own chest-X-ray features.")  # fmt: skip


def verdict_lines(result: CompareResult) -> list[str]:
    """Per class, on the lead metric (FD_cxr, else FID): which run is better, by the
    Holm-adjusted p over compare's whole family (classes and all x metrics x run pairs), beside
    the unadjusted interval of the difference; then each run's value against the class's floor."""
    lead = result.context.get("lead_metric", "fid")
    label = shown(lead).label
    out = []
    for d in result.differences:
        if d["metric"] != lead:
            continue
        if d["better"] is None:
            out.append(f"{d['class']}: {d['run_a']} vs {d['run_b']}: no verdict ({d['reason']})")
            continue
        adj = f"Holm-adjusted p {format_p(d['p_adjusted'])} over m = {d['family']} comparisons"
        what = (
            f"{label} difference {d['run_a']} - {d['run_b']} {fmt(d['diff'], lead)}, "
            f"interval [{fmt(d['low'], lead)}, {fmt(d['high'], lead)}], {adj}"
        )
        if d["better"] == "no difference":
            out.append(f"{d['class']}: {d['run_a']} vs {d['run_b']}: no difference shown ({what})")
        else:
            out.append(f"{d['class']}: {d['better']} is better ({what})")
    floor_n = {f["class"]: f.get("n_fake") for f in result.floor}
    for r in result.rows:
        if r.get(f"{lead}_floor") is None:
            continue
        said = f"{r['class']}: {r['run']} {label} {fmt(r[lead], lead)}, floor {fmt(r[f'{lead}_floor'], lead)}"
        if r.get(f"{lead}_minus_floor") is None:  # the class had fewer training images than n (rows._beside_floor)
            out.append(f"{said} from only {floor_n.get(r['class'])} training images against the run's "
                       f"{r.get('n_fake')}: not comparable ({label} falls as n grows), no difference given")  # fmt: skip
        else:
            out.append(f"{said}, above the floor by {_value_cell(r, lead, f'{lead}_minus_floor').page()}")
    return out


def markdown(result: CompareResult, images: dict[str, str]) -> str:
    labels = ", ".join(r["label"] for r in result.runs)
    lines = [f"# cxraug compare: {labels}", "", *context_lines(result), ""]
    lead = shown(result.context.get("lead_metric", "fid")).label
    lines += [f"## Verdicts ({lead})", "", lead_line(result), "", *(f"- {v}" for v in verdict_lines(result)), ""]
    for t in tables(result):
        lines += [f"## {t.title}", "", *to_markdown(t), ""]
    lines += ["## Images", ""]
    lines += [f"![{alt}]({name})" for name, alt in images.items()]
    return "\n".join(lines) + "\n"
