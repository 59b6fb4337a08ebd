"""Cost of one cgan training step per recipe variant, as ratios to the defaults measured in the
same run (the variants take turns, so a busy machine slows them alike).

    python benchmarks/cgan_step_cost.py --size 32 --threads 1 --rounds 5
    python benchmarks/cgan_step_cost.py --size 64 --skip dfeat-up2 --variant wide=g_ch=32,d_ch=32
    python benchmarks/cgan_step_cost.py --device cuda --mixed-precision bf16 --size 128 --skip dfeat-up2

Prints ms/step, img/s and the ratio to ``default`` for each variant, and a JSON line.
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from accelerate import Accelerator

from cxraug.config import parse_sets
from cxraug.generator import DataSpec

VARIANTS = {
    "default": "",
    "r1": "r1_gamma=1,r1_every=4",
    "lecam": "lecam=0.1",
    # the pretrained-feature D (issue 32): at the image size, and on images upsampled 2x
    "dfeat": "d_features=true",
    "dfeat-up2": "d_features=true,d_features_upsample=2",
}


def build(sets: str, size: int, classes: int, acc: Accelerator) -> object:
    from cxraug_cgan import CGAN

    cfg = CGAN.Config(**parse_sets([s for s in sets.split(",") if s]))
    gen = CGAN(cfg, DataSpec(classes=tuple(f"c{i}" for i in range(classes)), size=size), seed=0)
    gen.setup(acc)
    return gen


def sync(device: torch.device) -> None:
    """A GPU runs asynchronously: wait for its queued work before reading the clock."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--classes", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=10, help="timed steps per variant per round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--variant", action="append", default=[], help="name=key=value,key=value (repeatable)")
    ap.add_argument("--skip", action="append", default=[], help="a built-in variant not to run (repeatable)")
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    ap.add_argument("--mixed-precision", choices=("no", "bf16", "fp16"), default="no", help="on cuda only")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    variants = {k: v for k, v in VARIANTS.items() if k not in args.skip or k == "default"}
    for v in args.variant:
        name, _, sets = v.partition("=")
        variants[name] = sets
    acc = Accelerator(cpu=args.device == "cpu", mixed_precision=args.mixed_precision)
    gens = {name: build(sets, args.size, args.classes, acc) for name, sets in variants.items()}
    x = (torch.rand(args.batch, 1, args.size, args.size) * 2 - 1).to(acc.device)
    y = (torch.arange(args.batch) % args.classes).to(acc.device)
    times: dict[str, list[float]] = {name: [] for name in gens}
    for gen in gens.values():
        gen.train_step(x, y, acc)  # warm-up
    for _ in range(args.rounds):
        for name, gen in gens.items():
            sync(acc.device)
            t = time.perf_counter()
            for _ in range(args.steps):
                gen.train_step(x, y, acc)
            sync(acc.device)
            times[name].append((time.perf_counter() - t) / args.steps)
    base = sorted(times["default"])[len(times["default"]) // 2]
    print(f"cgan step cost at {args.size} px, batch {args.batch}, {acc.device}, {args.mixed_precision} precision, "
          f"{args.threads} thread(s), "
          f"median of {args.rounds} rounds x {args.steps} steps")  # fmt: skip
    print(f"{'variant':<14} {'ms/step':>8} {'img/s':>7} {'x default':>9}")
    out = {}
    for name, ts in times.items():
        med = sorted(ts)[len(ts) // 2]
        out[name] = {"ms_per_step": round(med * 1000, 1), "img_per_s": round(args.batch / med, 1),
                     "ratio": round(med / base, 3)}  # fmt: skip
        print(f"{name:<14} {med * 1000:>8.1f} {args.batch / med:>7.1f} {med / base:>9.2f}")
    print(json.dumps({"size": args.size, "batch": args.batch, "device": str(acc.device),
                      "mixed_precision": args.mixed_precision, "threads": args.threads, "variants": out}))  # fmt: skip


if __name__ == "__main__":
    main()
