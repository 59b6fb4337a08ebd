"""Sample quality per CPU-minute: the cgan at fixed time budgets vs the diffusion baseline vs real data.

The fixed protocol of issue 10, rerunnable by anyone:

- data: PneumoniaMNIST balanced subset (../shared/data/medmnist), prepared at 32 px;
- cgan: `cxraug train-gen --plugin cgan --time-limit B` for each budget B (5, 15, 30 min),
  one run resumed with a longer limit each time (the EMA and every other schedule depend
  on images seen, not on the planned length, so the 5-minute point of a 30-minute run is a
  5-minute run);
- diffusion: `--time-limit 30`, sampled with DPM-Solver++ 20 steps, guidance 2;
- floor: 234 real *training* images per class against the same test images;
- every source is scored the same way in one process: test split, 234 images per class,
  noise seed 0, the standard FID network, real features cached.

It prints per class FID, KID, precision, recall, the sampling img/s, and the ratios
cgan/diffusion and cgan/floor, with the targets of issue 10. Stages whose results exist
under --out are reused, so an interrupted protocol resumes; a stored result or run made with
other settings (the prepared data's fingerprint, split, n, seeds, metrics, --cgan-set,
training seed, budget) is refused in one line naming what differs, never reported under the
new settings.

    python benchmarks/gan_quality.py --out results/gan-quality            # the protocol
    python benchmarks/gan_quality.py --out results/gan-quality --jobs 2   # cgan and diffusion at
        # the same time, one core each: each gets exactly its budget in CPU-minutes
    python benchmarks/gan_quality.py --out results/abl --budgets 4 --no-diffusion --split val \\
        --n 135 --name lecam --cgan-set lecam=0.1          # an ablation, judged on val
    python benchmarks/gan_quality.py --dataset nih64 --out results/nih64-quality --budgets 60 \\
        --diffusion-minutes 60 --seeds 0,1,2 --metrics fid,kid,pr,fd_cxr   # issue 19's NIH protocol

Besides the metrics it records, per class, the diversity of the samples (the pixel standard
deviation across samples, averaged over pixels) and the share of their spectral energy in the
upper frequency band (cxraug.metrics.spectrum: a grid texture shows there), next to the same
numbers for the real training images (OUT/results/real-texture-DATASET.json). With --seeds the
same generator is scored once per sampling seed; the report shows the mean and the spread.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
NPZ = ROOT.parent / "shared" / "data" / "medmnist" / "pneumoniamnist_balanced_subset.npz"
NIH = ROOT.parent / "shared" / "data" / "nih-cxr14"
DIFFUSION_SAMPLING = ["sampler=dpmsolver++", "steps=20", "guidance=2"]
METRICS = ("fid", "kid", "precision", "recall")
EXTRA = ("fd_cxr", "kid_cxr", "precision_cxr", "recall_cxr", "spread", "high_band")
DATASETS = {  # name -> prepare arguments (the real data in ../shared)
    "pmnist32": ["--source", "medmnist", "--npz", str(NPZ), "--size", "32"],
    "nih32": ["--source", "nih", "--data-dir", str(NIH), "--size", "32"],
    "nih64": ["--source", "nih", "--data-dir", str(NIH), "--size", "64"],
}


def cxraug(*args: str, threads: int) -> None:
    env = {**os.environ, "CXRAUG_THREADS": str(threads)}
    cmd = [sys.executable, "-m", "cxraug", *args]
    print("$", " ".join(cmd[2:]), flush=True)
    subprocess.run(cmd, check=True, env=env)


def prepare(out: Path, threads: int, dataset: str = "pmnist32") -> Path:
    data = out / "data" / dataset
    if not (data / "dataset.json").is_file():
        source = NPZ if dataset == "pmnist32" else NIH
        if not source.exists():
            sys.exit(f"{dataset}: the real data is not at {source} (see ../shared/data/README.md)")
        cxraug("prepare", *DATASETS[dataset], "--out", str(data), "--overwrite", threads=threads)
    return data


def find_run(runs: Path, plugin: str) -> Path | None:
    found = sorted(p for p in runs.glob(f"[0-9]*-{plugin}-*") if p.is_dir()) if runs.is_dir() else []
    return found[-1] if found else None


def train(
    data: Path,
    runs: Path,
    plugin: str,
    minutes: float,
    sets: list[str],
    threads: int,
    rate: float | None = None,
    seed: int = 0,
) -> Path:
    """Train (or resume) the run of ``plugin`` until ``minutes`` of training steps; with
    ``rate`` (this variant's steps per minute measured alone on one thread), until
    ``minutes x rate`` steps instead, so a machine shared with other jobs cannot shorten it."""
    wanted = {"plugin": plugin, "sets": sets, "seed": seed, "steps_per_min": rate, "data": data_identity(data)}
    marker = runs / "settings.json"  # what the run below was started with
    run = find_run(runs, plugin)
    if run is not None:
        same_settings(runs, json.loads(marker.read_text()) if marker.is_file() else None, wanted)
    else:
        runs.mkdir(parents=True, exist_ok=True)
        marker.write_text(json.dumps(wanted))
    flags = ["--steps", str(round(minutes * rate))] if rate else ["--time-limit", f"{minutes:g}"]
    if run is None:
        base = ["train-gen", "--plugin", plugin, "--data", str(data), "--out", str(runs), "--seed", str(seed)]
        cxraug(*base, *flags, *[x for s in sets for x in ("--set", s)], threads=threads)
        run = find_run(runs, plugin)
        assert run is not None
    else:
        cxraug("train-gen", "--resume", str(run), *flags, threads=threads)
    return run


def cost(run: Path) -> dict[str, Any]:
    """Training cost from the run's own log: the last stop record (cumulative over resumes)."""
    recs = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if x.strip()]
    stop = [r for r in recs if r.get("kind") == "stop"][-1]
    rates = [r["img_per_s"] for r in recs if r.get("kind") == "train"]
    return {
        "run": run.name, "steps": stop["step"], "train_min": round(stop["train_s"] / 60, 2),
        "images_seen": stop["images_seen"], "train_img_per_s": round(sorted(rates)[len(rates) // 2], 1),
    }  # fmt: skip


def score_source(data_dir: Path, source: Any, args: argparse.Namespace, seed: int = 0) -> dict[str, Any]:
    from cxraug.data.prepared import open_prepared
    from cxraug.metrics.features import load_feature_extractor
    from cxraug.metrics.score import ScoreConfig, score

    data = open_prepared(data_dir)
    cfg = ScoreConfig(split=args.split, n=args.n, metrics=args.metrics, memorization=False, seed=seed)
    extractor = load_feature_extractor(None, "auto")
    timed = _timed(_matched(source, data, args.split) if args.match_real else source)
    result = score(data, timed, cfg, extractor)
    rows = {r["class"]: {k: r.get(k) for k in ("n_real", "n_fake", *METRICS, *EXTRA)} for r in result.rows}
    for c, tex in timed.info.pop("texture").items():
        if c in rows:
            rows[c].update(tex)
    return {"split": args.split, "n_per_class": args.n, "rows": rows, "sample_img_per_s": timed.info["img_per_s"]}


def _matched(source: Any, data: Any, split: str) -> Any:
    """The same source, drawing per class no more images than the split has real ones (at least
    2, for the spread): the pooled "all" row needs only that many, and a slow sampler (diffusion
    at 64 px) then spends its time where a number comes out. Classes too small for a per-class
    FID keep their share of the pool and their spread."""
    import numpy as np

    from cxraug.metrics.sources import FakeSource

    counts = np.bincount(np.asarray(data.labels(split)), minlength=len(data.classes))

    def draw(class_name: str, n: int, reporter: Any) -> Any:
        return source.draw(class_name, min(n, max(2, int(counts[data.classes.index(class_name)]))), reporter)

    return FakeSource(classes=source.classes, size=source.size, draw=draw, info={**source.info, "matched": split})


def texture(images: Any) -> dict[str, float]:
    """Diversity and high-frequency texture of a set of uint8 images of one class."""
    import numpy as np

    from cxraug.metrics.spectrum import high_band_share

    x = np.asarray(images, dtype=np.float64) / 255.0
    if len(x) < 2:
        return {"spread": None, "high_band": None}  # no spread in fewer than two images
    return {"spread": round(float(x.std(axis=0).mean()), 4), "high_band": round(high_band_share(x), 5)}


def _timed(source: Any) -> Any:
    """The same source, recording how fast it produced its images (sampling throughput) and
    the texture of each class's images."""
    from cxraug.metrics.sources import FakeSource

    clock = {"s": 0.0, "n": 0}
    info = {**source.info, "texture": {}}

    def draw(class_name: str, n: int, reporter: Any) -> Any:
        t = time.perf_counter()
        imgs = source.draw(class_name, n, reporter)
        clock["s"] += time.perf_counter() - t
        clock["n"] += len(imgs)
        info["img_per_s"] = round(clock["n"] / clock["s"], 2)
        info["texture"][class_name] = texture(imgs)
        return imgs

    return FakeSource(classes=source.classes, size=source.size, draw=draw, info=info)


def over_seeds(make: Any, seeds: list[int]) -> dict[str, Any]:
    """Score once per sampling seed; ``rows`` are the first seed's (as before), ``seed_rows``
    every seed's, ``mean`` and ``sd`` per class and metric across seeds."""
    import statistics

    per = {s: make(s) for s in seeds}
    first = per[seeds[0]]
    if len(seeds) == 1:
        return first
    mean: dict[str, dict[str, float]] = {}
    sd: dict[str, dict[str, float]] = {}
    for c in first["rows"]:
        for k in (*METRICS, *EXTRA):
            vals = [per[s]["rows"].get(c, {}).get(k) for s in seeds]
            if any(v is None for v in vals):
                continue
            mean.setdefault(c, {})[k] = statistics.fmean(vals)
            sd.setdefault(c, {})[k] = statistics.stdev(vals)
    return {**first, "seeds": seeds, "seed_rows": {str(s): per[s]["rows"] for s in seeds}, "mean": mean, "sd": sd}


def real_texture(data_dir: Path, out: Path, dataset: str) -> dict[str, Any]:
    """Per class: the training images' texture (what the samples' is compared with)."""
    import numpy as np

    from cxraug.data.prepared import open_prepared

    def make() -> dict[str, Any]:
        data = open_prepared(data_dir)
        images, labels = data.images("train"), data.labels("train")
        rows = {}
        for i, c in enumerate(data.classes):
            idx = np.flatnonzero(labels == i)
            if len(idx) >= 2:
                rows[c] = {"n_train": len(idx), **texture(images[idx])}
        return {"split": "train", "rows": rows}

    return stage(
        out / "results" / f"real-texture-{dataset}.json",
        make,
        {"dataset": dataset, "data": data_identity(data_dir), "split": "train"},
    )


def score_run(data: Path, run: Path, sets: list[str], args: argparse.Namespace) -> dict[str, Any]:
    from cxraug.config import parse_sets
    from cxraug.metrics.sources import generator_source
    from cxraug.runs import load_generator

    gen, _meta = load_generator(run)
    options = gen.parse_sample_options(parse_sets(sets))
    res = over_seeds(lambda s: score_source(data, generator_source(gen, seed=s, options=options), args, s), args.seeds)
    return {**res, **cost(run), "sampling": sets}


def floor_source(data_dir: Path, n: int) -> Any:
    """Real training images of each class (a seeded choice of n) standing in for a generator."""
    from cxraug.data.prepared import open_prepared
    from cxraug.metrics.sources import train_images_source

    return train_images_source(open_prepared(data_dir), seed=0)


def score_floor(data: Path, args: argparse.Namespace) -> dict[str, Any]:
    res = score_source(data, floor_source(data, args.n), args, seed=args.seeds[0])
    return {**res, "sample_img_per_s": None}  # real images are read, not sampled


def data_identity(data: Path) -> str:
    """The prepared data's fingerprint (size, format and a hash of its pixels, recorded by
    prepare): a result or run is reused only on the same data."""
    from cxraug.data.prepared import fingerprint, open_prepared

    return fingerprint(open_prepared(data))


def scoring(args: argparse.Namespace, data: Path, **extra: Any) -> dict[str, Any]:
    """What a stored result depends on besides its generator: reused only when these match."""
    return {"dataset": args.dataset, "data": data_identity(data), "split": args.split, "n": args.n,
            "match_real": args.match_real, "seeds": args.seeds, "metrics": args.metrics, **extra}  # fmt: skip


def same_settings(where: Path, stored: Any, wanted: dict[str, Any]) -> None:
    """Refuse to reuse a result or a run made with other settings: a reused file would silently
    report the old settings' numbers under the new ones' name."""
    wanted = json.loads(json.dumps(wanted))  # tuples as lists, as stored
    if stored == wanted:
        return
    stored = stored if isinstance(stored, dict) else {}
    diff = [f"{k}: {stored.get(k, 'not recorded')!r} there, {wanted.get(k)!r} now"
            for k in sorted({*stored, *wanted}) if stored.get(k) != wanted.get(k)]  # fmt: skip
    sys.exit(f"{where} was made with other settings ({'; '.join(diff)}): give another --name or --out, or remove it")


def stage(path: Path, make: Any, settings: dict[str, Any]) -> dict[str, Any]:
    if path.is_file():
        res = json.loads(path.read_text())
        same_settings(path, res.get("settings"), settings)
        return res
    res = {**make(), "settings": settings}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(res, indent=1))
    tmp.replace(path)
    return res


def run_cgan(data: Path, args: argparse.Namespace) -> None:
    runs = args.out / "runs" / args.name
    for b in args.budgets:

        def make(b: float = b) -> dict[str, Any]:
            run = train(data, runs, "cgan", b, args.cgan_set, args.threads, args.cgan_steps_per_min, args.train_seed)
            return score_run(data, run, [], args)

        what = scoring(args, data, generator="cgan", sets=args.cgan_set, train_seed=args.train_seed,
                       steps_per_min=args.cgan_steps_per_min, minutes=b)  # fmt: skip
        stage(args.out / "results" / args.split / f"{args.name}-{b:g}min.json", make, what)


def run_diffusion(data: Path, args: argparse.Namespace) -> None:
    runs = args.out / "runs" / "diffusion"
    m = args.diffusion_minutes

    def make() -> dict[str, Any]:
        return score_run(data, train(data, runs, "diffusion", m, args.diffusion_set, args.threads),
                         DIFFUSION_SAMPLING, args)  # fmt: skip

    what = scoring(args, data, generator="diffusion", sets=args.diffusion_set, sampling=DIFFUSION_SAMPLING, minutes=m)
    stage(args.out / "results" / args.split / f"diffusion-{m:g}min.json", make, what)


def report(args: argparse.Namespace) -> str:
    files = sorted((args.out / "results" / args.split).glob("*.json"), key=lambda p: _order(p.stem))
    res = {p.stem: json.loads(p.read_text()) for p in files}
    floor = res.get("floor")
    diff = res.get(f"diffusion-{args.diffusion_minutes:g}min")
    real_tex_file = args.out / "results" / f"real-texture-{args.dataset}.json"
    real_tex = json.loads(real_tex_file.read_text())["rows"] if real_tex_file.is_file() else {}
    classes = [c for c in (floor or next(iter(res.values())))["rows"] if c != "all"]
    seeds = max((len(r.get("seeds", [0])) for r in res.values()), default=1)
    how = f"mean ± sd over {seeds} sampling seeds" if seeds > 1 else "sampling seed 0"
    per_class = (
        f"as many images per class as the split has real ones, at most {args.n}"
        if args.match_real
        else (f"{args.n} images per class")
    )
    lines = [f"# cgan vs diffusion vs real ({args.dataset}, {args.split} split, {per_class}, {how})", ""]
    lines.append("| source | train min | steps | img seen | sample img/s | class | n real | n fake | FID | KID | "
                 "precision | recall | FD_cxr | spread (real) | high band (real) | FID/floor | FID/diffusion |")  # fmt: skip
    lines.append("|" + "---|" * 17)
    for name, r in res.items():
        for c in [*classes, "all"]:
            row = r["rows"].get(c)
            if not row:
                continue
            m, sd = r.get("mean", {}).get(c, {}), r.get("sd", {}).get(c, {})
            fid = m.get("fid", row.get("fid"))
            f_ratio = _ratio(fid, floor["rows"].get(c, {}).get("fid") if floor else None)
            d_ratio = _ratio(fid, _mean(diff, c, "fid") if diff else None)
            rt = real_tex.get(c, {})

            def cell(k: str, d: int, row=row, m=m, sd=sd) -> str:
                v = m.get(k, row.get(k))
                return _f(v, d) + (f" ± {sd[k]:.{d}f}" if k in sd else "")

            lines.append(
                f"| {name} | {r.get('train_min', '-')} | {r.get('steps', '-')} | {r.get('images_seen', '-')} | "
                f"{r.get('sample_img_per_s') or '-'} | {c} | {row['n_real']} | {row['n_fake']} | {cell('fid', 1)} | "
                f"{cell('kid', 4)} | {cell('precision', 3)} | {cell('recall', 3)} | {cell('fd_cxr', 1)} | "
                f"{cell('spread', 3)} ({_f(rt.get('spread'), 3)}) | {cell('high_band', 4)} ({_f(rt.get('high_band'), 4)}) | "
                f"{f_ratio} | {d_ratio} |"
            )
    lines += ["", *targets(res, classes, floor, diff, real_tex, args)]
    return "\n".join(lines)


def _mean(r: dict, c: str, k: str) -> float | None:
    return r.get("mean", {}).get(c, {}).get(k, r["rows"].get(c, {}).get(k))


def targets(
    res: dict, classes: list[str], floor: dict | None, diff: dict | None, real_tex: dict, args: argparse.Namespace
) -> list:
    """Issue 19's targets for the longest cgan budget (and FID <= 100 overall by 10 minutes),
    on the mean over sampling seeds where there are several."""
    cg = sorted((k for k in res if k.startswith(f"{args.name}-")), key=lambda k: float(k.split("-")[-1][:-3]))
    if not cg or floor is None:
        return ["(targets need the floor and at least one cgan budget)"]
    best = res[cg[-1]]
    out = [f"targets for {cg[-1]} ({best['train_min']} training minutes):"]
    for c in classes:
        fl = floor["rows"][c]
        if best["rows"].get(c, {}).get("fid") is None or fl.get("fid") is None:
            out.append(f"- {c}: not scored ({best['rows'].get(c, {}).get('status', 'too few images')})")
            continue
        v = {k: _mean(best, c, k) for k in (*METRICS, "spread")}
        checks = [
            ("FID <= 1.5 x floor", v["fid"], 1.5 * fl["fid"], v["fid"] <= 1.5 * fl["fid"]),
            ("precision >= 0.5" if args.dataset == "pmnist32" else "precision >= 0.3", v["precision"],
             0.5 if args.dataset == "pmnist32" else 0.3, v["precision"] >= (0.5 if args.dataset == "pmnist32" else 0.3)),
            ("recall >= 0.3", v["recall"], 0.3, v["recall"] >= 0.3),
        ]  # fmt: skip
        rt = real_tex.get(c, {})
        if rt.get("n_train", 0) >= 10 and v["spread"] is not None:
            checks.append(("spread >= 0.8 x real", v["spread"], 0.8 * rt["spread"], v["spread"] >= 0.8 * rt["spread"]))
        if diff and _mean(diff, c, "fid") is not None:
            dfid = _mean(diff, c, "fid")
            checks.append(("FID <= diffusion", v["fid"], dfid, v["fid"] <= dfid))
        out.append(f"- {c} (floor precision {fl['precision']:.3f}, recall {fl['recall']:.3f}): " + "; ".join(
            f"{name}: {x:.4g} vs {lim:.4g} {'met' if ok else 'MISSED'}" for name, x, lim, ok in checks))  # fmt: skip
    early = [k for k in cg if res[k]["train_min"] <= 10.5]
    if early:
        fid = _mean(res[early[-1]], "all", "fid")
        out.append(f"- overall FID by {res[early[-1]]['train_min']} min: {fid:.1f} (target <= 100: "
                   f"{'met' if fid <= 100 else 'MISSED'})")  # fmt: skip
    return out


def _order(stem: str) -> tuple[str, float]:
    """cgan-5min before cgan-15min; the floor last."""
    name, _, budget = stem.rpartition("-")
    if stem == "floor" or not budget.endswith("min"):
        return ("~" + stem, 0.0)
    return (name, float(budget[:-3]))


def _f(v: float | None, d: int) -> str:
    return "-" if v is None else f"{v:.{d}f}"


def _ratio(a: float | None, b: float | None) -> str:
    return "-" if a is None or not b else f"{a / b:.2f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--budgets", type=lambda s: [float(x) for x in s.split(",")], default=[5.0, 15.0, 30.0])
    ap.add_argument("--diffusion-minutes", type=float, default=30.0)
    ap.add_argument("--no-diffusion", action="store_true")
    ap.add_argument("--split", default="test", choices=["val", "test"])
    ap.add_argument("--n", type=int, default=234, help="synthetic images per class (and real ones for the floor)")
    ap.add_argument("--name", default="cgan", help="name of the cgan variant (ablations)")
    ap.add_argument("--cgan-set", action="append", default=[], help="cgan --set key=value (repeatable)")
    ap.add_argument("--diffusion-set", action="append", default=[], help="diffusion --set key=value")
    ap.add_argument("--jobs", type=int, default=1, choices=[1, 2], help="2: cgan and diffusion at once")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch threads per job")
    ap.add_argument("--report-only", action="store_true", help="print the report of the results under --out")
    ap.add_argument("--only", choices=["cgan", "diffusion", "floor"], help=argparse.SUPPRESS)
    ap.add_argument("--cgan-steps-per-min", type=float, default=None,
                    help="budget in steps: this variant's steps per CPU-minute measured alone (e.g. the defaults' "
                         "rate over benchmarks/cgan_step_cost.py's ratio); robust to a shared machine")  # fmt: skip
    ap.add_argument("--dataset", default="pmnist32", choices=list(DATASETS), help="the real data to train and score on")
    ap.add_argument(
        "--seeds", type=lambda s: [int(x) for x in s.split(",")], default=[0], help="sampling seeds, e.g. 0,1,2"
    )
    ap.add_argument("--train-seed", type=int, default=0,
                    help="the cgan's training seed (give each seed its own --name: the spread over training runs)")  # fmt: skip
    ap.add_argument("--metrics", type=lambda s: s.split(","), default=["fid", "kid", "pr"], help="cxraug score metrics")
    ap.add_argument("--match-real", action="store_true",
                    help="draw per class at most as many images as the split has real ones (a slow sampler)")  # fmt: skip
    args = ap.parse_args()
    args.out = args.out.resolve()
    os.environ.setdefault("CXRAUG_THREADS", str(args.threads))
    import torch

    torch.set_num_threads(args.threads)
    data = prepare(args.out, args.threads, args.dataset)
    if args.only not in ("cgan", "diffusion"):  # once, before any parallel stage
        real_texture(data, args.out, args.dataset)
    if args.report_only:
        return print(report(args))
    if args.only == "cgan":
        return run_cgan(data, args)
    if args.only == "diffusion":
        return run_diffusion(data, args)
    floor_what = {**scoring(args, data, generator="real"), "seeds": args.seeds[:1]}  # the floor samples once
    floor = stage(args.out / "results" / args.split / "floor.json", lambda: score_floor(data, args), floor_what)
    if args.only == "floor":
        return print(json.dumps(floor["rows"]))
    if args.jobs == 2 and not args.no_diffusion:
        per_job = max(1, args.threads // 2)
        me = [sys.executable, __file__, *sys.argv[1:], "--threads", str(per_job)]
        procs = [subprocess.Popen([*me, "--only", part]) for part in ("cgan", "diffusion")]
        if any(p.wait() for p in procs):
            sys.exit("a protocol stage failed; rerun the same command to resume")
    else:
        run_cgan(data, args)
        if not args.no_diffusion:
            run_diffusion(data, args)
    text = report(args)
    (args.out / f"report-{args.split}.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
