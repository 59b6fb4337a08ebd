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
under --out are reused, so an interrupted protocol resumes.

    python benchmarks/gan_quality.py --out results/gan-quality            # the protocol
    python benchmarks/gan_quality.py --out results/gan-quality --jobs 2   # cgan and diffusion at
        # the same time, one core each: each gets exactly its budget in CPU-minutes
    python benchmarks/gan_quality.py --out results/abl --budgets 4 --no-diffusion --split val \\
        --n 135 --name wide --cgan-set g_ch4=256          # an ablation, judged on val
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
DIFFUSION_SAMPLING = ["sampler=dpmsolver++", "steps=20", "guidance=2"]
METRICS = ("fid", "kid", "precision", "recall")


def cxraug(*args: str, threads: int) -> None:
    env = {**os.environ, "CXRAUG_THREADS": str(threads)}
    cmd = [sys.executable, "-m", "cxraug", *args]
    print("$", " ".join(cmd[2:]), flush=True)
    subprocess.run(cmd, check=True, env=env)


def prepare(out: Path, threads: int) -> Path:
    data = out / "data" / "pmnist32"
    if not (data / "dataset.json").is_file():
        if not NPZ.is_file():
            sys.exit(f"PneumoniaMNIST not found at {NPZ} (see ../shared/data/README.md)")
        cxraug("prepare", "--source", "medmnist", "--npz", str(NPZ), "--size", "32", "--out", str(data),
               "--overwrite", threads=threads)  # fmt: skip
    return data


def find_run(runs: Path, plugin: str) -> Path | None:
    found = sorted(p for p in runs.glob(f"[0-9]*-{plugin}-*") if p.is_dir()) if runs.is_dir() else []
    return found[-1] if found else None


def train(data: Path, runs: Path, plugin: str, minutes: float, sets: list[str], threads: int) -> Path:
    """Train (or resume) the run of ``plugin`` until ``minutes`` of training steps."""
    run = find_run(runs, plugin)
    flags = ["--time-limit", f"{minutes:g}"]
    if run is None:
        base = ["train-gen", "--plugin", plugin, "--data", str(data), "--out", str(runs), "--seed", "0"]
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


def score_source(data_dir: Path, source: Any, args: argparse.Namespace) -> dict[str, Any]:
    from cxraug.data.prepared import open_prepared
    from cxraug.metrics.features import load_feature_extractor
    from cxraug.metrics.score import ScoreConfig, score

    data = open_prepared(data_dir)
    cfg = ScoreConfig(split=args.split, n=args.n, metrics=["fid", "kid", "pr"], memorization=False, seed=0)
    extractor = load_feature_extractor(None, "auto")
    timed = _timed(source)
    result = score(data, timed, cfg, extractor)
    rows = {r["class"]: {k: r.get(k) for k in ("n_real", "n_fake", *METRICS)} for r in result.rows}
    return {"split": args.split, "n_per_class": args.n, "rows": rows, "sample_img_per_s": timed.info["img_per_s"]}


def _timed(source: Any) -> Any:
    """The same source, recording how fast it produced its images (sampling throughput)."""
    from cxraug.metrics.sources import FakeSource

    clock = {"s": 0.0, "n": 0}
    info = dict(source.info)

    def draw(class_name: str, n: int, reporter: Any) -> Any:
        t = time.perf_counter()
        imgs = source.draw(class_name, n, reporter)
        clock["s"] += time.perf_counter() - t
        clock["n"] += len(imgs)
        info["img_per_s"] = round(clock["n"] / clock["s"], 2)
        return imgs

    return FakeSource(classes=source.classes, size=source.size, draw=draw, info=info)


def score_run(data: Path, run: Path, sets: list[str], args: argparse.Namespace) -> dict[str, Any]:
    from cxraug.config import parse_sets
    from cxraug.metrics.sources import generator_source
    from cxraug.runs import load_generator

    gen, _meta = load_generator(run)
    options = gen.parse_sample_options(parse_sets(sets))
    res = score_source(data, generator_source(gen, seed=0, options=options), args)
    return {**res, **cost(run), "sampling": sets}


def floor_source(data_dir: Path, n: int) -> Any:
    """Real training images of each class (a seeded choice of n) standing in for a generator."""
    import numpy as np

    from cxraug.data.prepared import open_prepared
    from cxraug.metrics.sources import FakeSource

    data = open_prepared(data_dir)
    images, labels = data.images("train"), data.labels("train")

    def draw(class_name: str, k: int, reporter: Any) -> Any:
        idx = np.flatnonzero(labels == data.classes.index(class_name))
        pick = np.sort(np.random.default_rng(0).permutation(idx)[: min(k, len(idx))])
        return np.asarray(images[pick])

    return FakeSource(classes=list(data.classes), size=data.size, draw=draw, info={"real": "train"})


def score_floor(data: Path, args: argparse.Namespace) -> dict[str, Any]:
    res = score_source(data, floor_source(data, args.n), args)
    return {**res, "sample_img_per_s": None}  # real images are read, not sampled


def stage(path: Path, make: Any) -> dict[str, Any]:
    if path.is_file():
        return json.loads(path.read_text())
    res = make()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(res, indent=1))
    tmp.replace(path)
    return res


def run_cgan(data: Path, args: argparse.Namespace) -> None:
    runs = args.out / "runs" / args.name
    for b in args.budgets:

        def make(b: float = b) -> dict[str, Any]:
            return score_run(data, train(data, runs, "cgan", b, args.cgan_set, args.threads), [], args)

        stage(args.out / "results" / args.split / f"{args.name}-{b:g}min.json", make)


def run_diffusion(data: Path, args: argparse.Namespace) -> None:
    runs = args.out / "runs" / "diffusion"
    m = args.diffusion_minutes

    def make() -> dict[str, Any]:
        return score_run(data, train(data, runs, "diffusion", m, args.diffusion_set, args.threads),
                         DIFFUSION_SAMPLING, args)  # fmt: skip

    stage(args.out / "results" / args.split / f"diffusion-{m:g}min.json", make)


def report(args: argparse.Namespace) -> str:
    files = sorted((args.out / "results" / args.split).glob("*.json"), key=lambda p: _order(p.stem))
    res = {p.stem: json.loads(p.read_text()) for p in files}
    floor = res.get("floor")
    diff = res.get(f"diffusion-{args.diffusion_minutes:g}min")
    classes = [c for c in (floor or next(iter(res.values())))["rows"] if c != "all"]
    lines = [f"# cgan vs diffusion vs real ({args.split} split, {args.n} images per class, seed 0)", ""]
    lines.append("| source | train min | steps | img seen | sample img/s | class | n real | n fake | FID | KID | "
                 "precision | recall | FID/floor | FID/diffusion |")  # fmt: skip
    lines.append("|" + "---|" * 14)
    for name, r in res.items():
        for c in [*classes, "all"]:
            row = r["rows"].get(c)
            if not row:
                continue
            fid = row.get("fid")
            f_ratio = _ratio(fid, floor["rows"].get(c, {}).get("fid") if floor else None)
            d_ratio = _ratio(fid, diff["rows"].get(c, {}).get("fid") if diff else None)
            lines.append(
                f"| {name} | {r.get('train_min', '-')} | {r.get('steps', '-')} | {r.get('images_seen', '-')} | "
                f"{r.get('sample_img_per_s') or '-'} | {c} | {row['n_real']} | {row['n_fake']} | {_f(fid, 1)} | "
                f"{_f(row.get('kid'), 4)} | {_f(row.get('precision'), 3)} | {_f(row.get('recall'), 3)} | "
                f"{f_ratio} | {d_ratio} |"
            )
    lines += ["", *targets(res, classes, floor, diff, args)]
    return "\n".join(lines)


def targets(res: dict, classes: list[str], floor: dict | None, diff: dict | None, args: argparse.Namespace) -> list:
    """Issue 10's targets for the longest cgan budget (and FID <= 100 overall by 10 minutes)."""
    cg = sorted((k for k in res if k.startswith(f"{args.name}-")), key=lambda k: float(k.split("-")[-1][:-3]))
    if not cg or floor is None:
        return ["(targets need the floor and at least one cgan budget)"]
    best = res[cg[-1]]
    out = [f"targets for {cg[-1]} ({best['train_min']} training minutes):"]
    for c in classes:
        row, fl = best["rows"][c], floor["rows"][c]
        checks = [
            ("FID <= 1.5 x floor", row["fid"], 1.5 * fl["fid"], row["fid"] <= 1.5 * fl["fid"]),
            ("KID <= 0.05", row["kid"], 0.05, row["kid"] <= 0.05),
            ("precision >= 0.5", row["precision"], 0.5, row["precision"] >= 0.5),
            ("recall >= 0.2", row["recall"], 0.2, row["recall"] >= 0.2),
        ]
        if diff:
            dfid = diff["rows"][c]["fid"]
            checks.append(("FID <= diffusion", row["fid"], dfid, row["fid"] <= dfid))
        out.append(f"- {c} (floor precision {fl['precision']:.3f}, recall {fl['recall']:.3f}): " + "; ".join(
            f"{name}: {v:.4g} vs {lim:.4g} {'met' if ok else 'MISSED'}" for name, v, lim, ok in checks))  # fmt: skip
    early = [k for k in cg if res[k]["train_min"] <= 10.5]
    if early:
        fid = res[early[-1]]["rows"]["all"]["fid"]
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
    args = ap.parse_args()
    args.out = args.out.resolve()
    os.environ.setdefault("CXRAUG_THREADS", str(args.threads))
    import torch

    torch.set_num_threads(args.threads)
    if args.report_only:
        return print(report(args))
    data = prepare(args.out, args.threads)
    if args.only == "cgan":
        return run_cgan(data, args)
    if args.only == "diffusion":
        return run_diffusion(data, args)
    floor = stage(args.out / "results" / args.split / "floor.json", lambda: score_floor(data, args))
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
