"""cgan training speed through cxraug vs a bare PyTorch loop, and synth peak memory vs n.

Both loops train the same G and D (same config, batch, EMA and augmentation at the same fixed
probability P_AUG, LeCam when the config has it) on the same images in the same process run;
the ratio is what matters, not the absolute img/s.
Target: cxraug's loop at most 10% slower than the bare loop. Then synth's peak RSS for
n=500 and n=5000 images of one class, each in its own process. Target: within 10%.

    python benchmarks/train_speed.py [--size 64] [--steps 30] [--batch 64] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

P_AUG = 0.2  # both loops augment at this fixed p (cxraug's adaptive p would start at 0: cheaper)


def bare_loop(data_dir: Path, size: int, batch: int, steps: int, warmup: int, model_kw: dict) -> float:
    """The same recipe, written plainly: no Accelerate, no run directory, no logging."""
    import numpy as np
    from cxraug_cgan.augment import augment, parse_ops
    from cxraug_cgan.config import CGANConfig
    from cxraug_cgan.losses import Anchors, lecam_penalty
    from cxraug_cgan.nets import Discriminator, Generator

    from cxraug.data.prepared import open_prepared
    from cxraug.ema import EMA

    c = CGANConfig(**model_kw)
    data = open_prepared(data_dir)
    images = torch.from_numpy(np.asarray(data.images("train"))).float().div(127.5).sub(1).unsqueeze(1)
    labels = torch.from_numpy(data.labels("train"))
    k = len(data.classes)
    torch.manual_seed(0)
    G = Generator(size=size, num_classes=k, z_dim=c.z_dim, ch=c.g_ch, max_ch=c.max_ch, embed_dim=c.embed_dim,
                  convs=c.convs_per_block)  # fmt: skip
    D = Discriminator(size=size, num_classes=k, ch=c.d_ch, max_ch=c.max_ch, convs=c.convs_per_block,
                      mbstd_group=c.mbstd_group)  # fmt: skip
    ema = EMA(G, c)
    anchors = Anchors()
    opt_g = torch.optim.Adam(G.parameters(), lr=c.lr_g, betas=(c.beta1, c.beta2))
    opt_d = torch.optim.Adam(D.parameters(), lr=c.lr_d, betas=(c.beta1, c.beta2))
    ops, g = parse_ops(c.augment), torch.Generator().manual_seed(0)
    t0 = 0.0
    for step in range(steps):
        if step == warmup:
            t0 = time.perf_counter()
        idx = torch.randint(0, len(labels), (batch,), generator=g)
        x, y = images[idx], labels[idx]
        z = torch.randn(batch, c.z_dim, generator=g)
        with torch.no_grad():
            fake = G(z, y)
        out = D(torch.cat([augment(x, ops, P_AUG, g), augment(fake, ops, P_AUG, g)]), torch.cat([y, y]), parts=2)
        loss_d = F.relu(1 - out[:batch]).mean() + F.relu(1 + out[batch:]).mean()
        if c.lecam > 0:
            anchors.update(float(out[:batch].mean()), float(out[batch:].mean()))
            loss_d = loss_d + c.lecam * lecam_penalty(out[:batch], out[batch:], anchors.real, anchors.fake)
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        D.requires_grad_(False)
        loss_g = -D(augment(G(torch.randn(batch, c.z_dim, generator=g), y), ops, P_AUG, g), y).mean()
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        D.requires_grad_(True)
        ema.update(G, batch)
        loss_d.item(), loss_g.item()  # the same host syncs cxraug's loop makes for its logs
    return (steps - warmup) * batch / (time.perf_counter() - t0)


def cxraug_loop(data_dir: Path, runs_dir: Path, batch: int, steps: int, warmup: int, model_kw: dict) -> float:
    from cxraug_cgan.config import CGANConfig

    from cxraug.config import TrainConfig
    from cxraug.train import RunSpec, start_run, train

    train_cfg = TrainConfig(steps=steps, batch_size=batch, log_every=1, sample_every=0, checkpoint_every=0)
    fixed_p = {"ada_target": None, "aug_p": P_AUG}  # the bare loop's fixed probability
    spec = RunSpec("cgan", train_cfg, CGANConfig(**{**model_kw, **fixed_p}), data_dir)
    run = start_run(spec, runs_dir)
    train(run, spec)
    logs = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    t = {r["step"]: r["elapsed_s"] for r in logs if r["kind"] == "train"}  # the whole loop, logging included
    return (steps - warmup) * batch / (t[steps] - t[warmup])


def synth_peak_rss(run: Path, n: int, out: Path) -> float:
    """Peak RSS (MiB) of a synth process writing n images of one class."""
    code = (
        "import resource, sys\n"
        "from cxraug.synth import SynthConfig, synth\n"
        f"synth(SynthConfig(run={str(run)!r}, classes=['Hernia'], n={n}, out={str(out)!r}, batch_size=64))\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(r.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--quick", action="store_true", help="tiny model, 32 px, few steps, n=100/1000 for synth")
    args = ap.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    model_kw: dict = {}
    n_small, n_big = 500, 5000
    if args.quick:
        args.size, args.steps, args.warmup, args.batch = 32, 12, 2, 32
        model_kw = {"g_ch": 8, "d_ch": 8, "max_ch": 64, "standing_stats_batches": 2}
        n_small, n_big = 100, 1000
    from cxraug.data.prepare import PrepareConfig, prepare

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data_dir = tmp / f"phantom{args.size}"
        prepare(PrepareConfig(source="phantom", out=data_dir, size=args.size, n=1500))
        print(f"phantom data {args.size}px, batch {args.batch}, {args.steps} steps ({args.warmup} warm-up), "
              f"{torch.get_num_threads()} threads")  # fmt: skip
        bare = bare_loop(data_dir, args.size, args.batch, args.steps, args.warmup, model_kw)
        ours = cxraug_loop(data_dir, tmp / "runs", args.batch, args.steps, args.warmup, model_kw)
        bare2 = bare_loop(data_dir, args.size, args.batch, args.steps, args.warmup, model_kw)
        ref = (bare + bare2) / 2
        print(f"bare PyTorch loop: {bare:.1f} / {bare2:.1f} img/s (mean {ref:.1f}, before and after)")
        print(f"cxraug loop:       {ours:.1f} img/s")
        print(f"ratio cxraug/bare: {ours / ref:.3f}  (target >= 0.90)")
        run = next((tmp / "runs").iterdir())
        small = synth_peak_rss(run, n_small, tmp / "s1")
        big = synth_peak_rss(run, n_big, tmp / "s2")
        print(f"synth peak RSS: n={n_small}: {small:.0f} MiB, n={n_big}: {big:.0f} MiB, "
              f"ratio {big / small:.3f} (target <= 1.10)")  # fmt: skip


if __name__ == "__main__":
    main()
