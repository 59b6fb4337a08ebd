"""Training memory of the cgan per recipe variant, measured (not guessed) on any machine:
what autograd keeps for the backward of D's step and of G's step (the activations, which grow
with the batch and the image area) and what stays resident (weights, gradients, Adam's two
moments, the EMA copy of G, the frozen feature network). The same tensors are kept on a GPU,
so the numbers say what a GPU needs in float32 (bf16 autocast keeps most activations at half
the bytes); ratios are to the defaults measured in the same run.

    python benchmarks/cgan_memory.py --sizes 32,64,128 --batch 8
    python benchmarks/cgan_memory.py --sizes 64 --variant wide=g_ch=32,d_ch=32

Saved tensors are counted once per storage (views share it) and parameters are left out (they
are resident anyway). R1 is on in the measured D step (its double backward keeps the most).
Prints MB per image and at ``--report-batch`` images, and a JSON line.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from accelerate import Accelerator

from cxraug.config import parse_sets
from cxraug.generator import DataSpec

VARIANTS = {
    "default": "",
    "dfeat": "d_features=true",
    "dfeat-up2": "d_features=true,d_features_upsample=2",
}
MB = 1024**2


class SavedBytes:
    """Bytes of the distinct storages autograd saves for the backward, parameters excluded.
    Each counted storage is held until the count ends: once a backward frees it, a later
    tensor could take its address and be taken for it."""

    def __init__(self, resident: set[int]) -> None:
        self.resident, self.held, self.total = resident, {}, 0

    def pack(self, t: torch.Tensor) -> torch.Tensor:
        s = t.untyped_storage()
        if s.data_ptr() not in self.resident and s.data_ptr() not in self.held:
            self.held[s.data_ptr()] = s
            self.total += s.nbytes()
        return t

    @contextmanager
    def counting(self) -> Iterator[SavedBytes]:
        with torch.autograd.graph.saved_tensors_hooks(self.pack, lambda t: t):
            yield self


def build(sets: str, size: int, classes: int, acc: Accelerator) -> object:
    from cxraug_cgan import CGAN

    cfg = CGAN.Config(**parse_sets([s for s in sets.split(",") if s]))
    gen = CGAN(cfg, DataSpec(classes=tuple(f"c{i}" for i in range(classes)), size=size), seed=0)
    gen.setup(acc)
    return gen


def resident_bytes(gen: object) -> tuple[int, set[int]]:
    """Weights (trainable ones three more times: gradient and Adam's two moments), buffers, the
    EMA generator and the frozen backbone; and their storages, to leave out of the saved count."""
    total, ptrs = 0, set()
    nets = [gen.G_plain, gen.D_plain, gen.G_ema] + ([gen.DF_plain, gen.DF_plain.backbone] if gen.DF_plain else [])
    for net in nets:
        for p in net.parameters():
            if p.untyped_storage().data_ptr() in ptrs:
                continue
            ptrs.add(p.untyped_storage().data_ptr())
            total += p.nbytes * (4 if p.requires_grad and net is not gen.G_ema else 1)
        for b in net.buffers():
            ptrs.add(b.untyped_storage().data_ptr())
            total += b.nbytes
    return total, ptrs


def measure(gen: object, batch: int, size: int, classes: int, acc: Accelerator) -> dict[str, float]:
    x = torch.rand(batch, 1, size, size) * 2 - 1
    y = torch.arange(batch) % classes
    gen.train_step(x, y, acc)  # the feature D's weight and the optimisers' state exist after a step
    resident, ptrs = resident_bytes(gen)
    gen.steps_done = 0  # an R1 step
    with SavedBytes(ptrs).counting() as d_step:
        gen._d_step(x, y, gen.step_generator(0, x.device), acc, gen.features_weight())
    gen.steps_done = 0
    with SavedBytes(ptrs).counting() as whole:
        gen.train_step(x, y, acc)
    g_saved = max(whole.total - d_step.total, 0)
    return {"resident_mb": resident / MB, "d_step_mb_per_img": d_step.total / MB / batch,
            "g_step_mb_per_img": g_saved / MB / batch}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="32,64,128")
    ap.add_argument("--batch", type=int, default=8, help="images in the measured steps (the count is per image)")
    ap.add_argument("--report-batch", type=int, default=64, help="the per-GPU batch the totals are given for")
    ap.add_argument("--classes", type=int, default=15)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--variant", action="append", default=[], help="name=key=value,key=value (repeatable)")
    ap.add_argument("--skip", action="append", default=[], help="a built-in variant not to run (repeatable)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    variants = {k: v for k, v in VARIANTS.items() if k not in args.skip or k == "default"}
    variants.update(v.split("=", 1) for v in args.variant)
    acc, rows = Accelerator(cpu=True), []
    print(f"cgan training memory, float32, measured at batch {args.batch}; totals at batch {args.report_batch}")
    print(f"{'size':>4} {'variant':<12} {'resident MB':>11} {'D step MB/img':>13} {'G step MB/img':>13} "
          f"{'peak MB @' + str(args.report_batch):>12} {'x default':>9}")  # fmt: skip
    for size in (int(s) for s in args.sizes.split(",")):
        base = None
        for name, sets in variants.items():
            m = measure(build(sets, size, args.classes, acc), args.batch, size, args.classes, acc)
            peak = m["resident_mb"] + args.report_batch * max(m["d_step_mb_per_img"], m["g_step_mb_per_img"])
            base = peak if base is None else base
            rows.append({"size": size, "variant": name, **{k: round(v, 3) for k, v in m.items()},
                         "peak_mb": round(peak, 1), "ratio": round(peak / base, 2)})  # fmt: skip
            print(f"{size:>4} {name:<12} {m['resident_mb']:>11.1f} {m['d_step_mb_per_img']:>13.2f} "
                  f"{m['g_step_mb_per_img']:>13.2f} {peak:>12.0f} {peak / base:>9.2f}")  # fmt: skip
    print(json.dumps({"batch": args.batch, "report_batch": args.report_batch, "classes": args.classes, "rows": rows}))


if __name__ == "__main__":
    main()
