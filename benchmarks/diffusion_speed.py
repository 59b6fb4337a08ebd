"""Speed of the diffusion plugin: training img/s against a canonical diffusers loop, and sampling.

Training, same UNet (diffusers UNet2DModel built from the same config), same batch, same
process, interleaved in rounds so that load from other programs hits every side alike:

  canonical  the plain diffusers-style loop (as in diffusers' train_unconditional example):
             DDPMScheduler.add_noise, UNet forward, MSE, backward, clip_grad_norm_, AdamW,
             diffusers EMAModel (foreach) -- no Accelerate, no cxraug
  plugin     cxraug_diffusion.Diffusion.train_step through an Accelerator (what cxraug's loop calls)
  loop       the full loop, cxraug.train.train, on a prepared phantom dataset of the same size
             (data loading, logging; checkpoints and sample grids only at chunk ends, which the
             logged img/s excludes). Each round continues the run with --resume semantics.

Sampling: img/s of DDIM-50, DPM-Solver++-20 and DDPM-1000 at the same seed and labels
(untrained weights: the cost does not depend on them).

    .venv/bin/python benchmarks/diffusion_speed.py                        # CPU default model, 32 px
    .venv/bin/python benchmarks/diffusion_speed.py --quick                # tiny model, a minute
    .venv/bin/python benchmarks/diffusion_speed.py --size 64 --channels 64,128,256 --attention 16 \\
        --batch-size 64 --sample-n 64 --device cuda                       # a GPU setting
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

# On a CPU shared with other programs, OpenMP threads that spin while waiting make torch up to
# ~40x slower (measured here with 2 threads under load); sleeping waiters avoid that. Must be set
# before torch loads its OpenMP runtime.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--channels", default="32,64,128", help="block_out_channels (default: the CPU default)")
    p.add_argument("--layers-per-block", type=int, default=1)
    p.add_argument("--attention", default="", help="attention resolutions, e.g. 16,8")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds per training side")
    p.add_argument("--steps", type=int, default=4, help="timed steps per round and side")
    p.add_argument("--no-loop", action="store_true", help="skip the full cxraug.train loop")
    p.add_argument("--sample-n", type=int, default=4, help="images per sampler")
    p.add_argument("--samplers", default="ddim:50,dpmsolver++:20,ddpm:1000")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: leave as is)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: Accelerate's choice)")
    p.add_argument("--quick", action="store_true", help="tiny model, few steps (a smoke run)")
    p.add_argument("--json", type=Path, default=None, help="also write the results here")
    a = p.parse_args()
    if a.quick:
        a.channels, a.batch_size, a.rounds, a.steps, a.sample_n = "8,16", 16, 2, 3, 4
        a.samplers = "ddim:50,dpmsolver++:20,ddpm:200"
    return a


def model_config(a: argparse.Namespace):
    from cxraug_diffusion import DiffusionConfig

    ints = lambda s: tuple(int(v) for v in s.split(",") if v.strip())
    return DiffusionConfig(
        block_out_channels=ints(a.channels),
        layers_per_block=a.layers_per_block,
        attention_resolutions=ints(a.attention),
        lr_warmup_steps=0,
    )


def the_batch(a: argparse.Namespace, num_classes: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(a.batch_size, 1, a.size, a.size, generator=g) * 2 - 1
    y = torch.randint(0, num_classes, (a.batch_size,), generator=g)
    return x.to(device), y.to(device)


class Canonical:
    """The reference: a plain diffusers training step, nothing of cxraug or Accelerate."""

    def __init__(self, cfg: Any, spec: Any, device: torch.device) -> None:
        from cxraug_diffusion.model import build_unet
        from diffusers import DDPMScheduler
        from diffusers.training_utils import EMAModel

        torch.manual_seed(0)
        self.cfg, self.null = cfg, spec.num_classes
        self.unet = build_unet(cfg, spec).to(device).train()
        self.sched = DDPMScheduler(**cfg.schedule_kwargs())
        self.opt = torch.optim.AdamW(
            self.unet.parameters(), lr=cfg.lr, betas=cfg.adam_betas, eps=cfg.adam_eps, weight_decay=cfg.weight_decay
        )
        self.ema = EMAModel(self.unet.parameters(), decay=cfg.ema_decay, use_ema_warmup=True, foreach=True)
        self.ema.to(device)

    def step(self, x: torch.Tensor, y: torch.Tensor) -> float:
        noise = torch.randn_like(x)
        t = torch.randint(0, self.cfg.num_train_timesteps, (x.shape[0],), device=x.device)
        y = torch.where(torch.rand(x.shape[0], device=x.device) < self.cfg.cond_drop_prob, self.null, y)
        pred = self.unet(self.sched.add_noise(x, noise, t), t, class_labels=y).sample
        loss = torch.nn.functional.mse_loss(pred.float(), noise.float())
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.unet.parameters(), self.cfg.grad_clip)
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        self.ema.step(self.unet.parameters())
        return loss.item()


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn: Any, steps: int, device: torch.device) -> float:
    sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        fn()
    sync(device)
    return time.perf_counter() - t0


class FullLoop:
    """cxraug.train.train over a prepared phantom set, continued by ``steps`` each round."""

    def __init__(self, a: argparse.Namespace, cfg: Any, work: Path) -> None:
        from cxraug.config import TrainConfig
        from cxraug.data.prepare import PrepareConfig, prepare
        from cxraug.train import RunSpec, start_run

        data = work / f"phantom{a.size}"
        prepare(PrepareConfig(source="phantom", out=data, size=a.size, n=max(200, 4 * a.batch_size), workers=1))
        self.train_cfg = TrainConfig(
            steps=a.steps, batch_size=a.batch_size, log_every=a.steps, sample_every=0, checkpoint_every=0,
            grid_per_class=1, keep_checkpoints=1,
        )  # fmt: skip
        self.spec = RunSpec("diffusion", self.train_cfg, cfg, data)
        self.run = start_run(self.spec, work / "runs")
        self.rounds_done = 0

    def round(self) -> float:
        """Train one more chunk; img/s as the loop itself logged it for the chunk's steps."""
        from cxraug import runs
        from cxraug.fsutil import read_jsonl
        from cxraug.train import spec_from_run, train

        self.rounds_done += 1
        steps = self.rounds_done * self.train_cfg.steps
        spec = spec_from_run(self.run, {"steps": steps}) if self.rounds_done > 1 else self.spec
        train(self.run, spec, resume=self.rounds_done > 1)
        rec = [r for r in read_jsonl(self.run / runs.METRICS) if r.get("kind") == "train" and r["step"] == steps]
        return float(rec[-1]["img_per_s"])


def bench_training(a: argparse.Namespace, cfg: Any, spec: Any, work: Path) -> dict[str, Any]:
    from accelerate import Accelerator
    from cxraug_diffusion import Diffusion

    accelerator = Accelerator(cpu=a.device == "cpu") if a.device else Accelerator()
    device = accelerator.device
    x, y = the_batch(a, spec.num_classes, device)

    canonical = Canonical(cfg, spec, device)
    torch.manual_seed(0)
    plugin = Diffusion(cfg, spec, seed=0)
    plugin.setup(accelerator)
    loop = None if a.no_loop else FullLoop(a, cfg, work)

    sides: dict[str, list[float]] = {"canonical": [], "plugin": []}
    if loop:
        sides["loop"] = []
    canonical.step(x, y)  # warm-up (allocations, kernels)
    plugin.train_step(x, y, accelerator)
    for _ in range(a.rounds):
        sides["canonical"].append(a.steps * a.batch_size / timed(lambda: canonical.step(x, y), a.steps, device))
        sides["plugin"].append(
            a.steps * a.batch_size / timed(lambda: plugin.train_step(x, y, accelerator), a.steps, device)
        )
        if loop:
            sides["loop"].append(loop.round())
    # the loop's first chunk includes its warm-up: drop it when there are others
    if loop and len(sides["loop"]) > 1:
        sides["loop"] = sides["loop"][1:]
    med = {k: statistics.median(v) for k, v in sides.items()}
    return {
        "device": str(device),
        "params": sum(p.numel() for p in plugin.model.parameters()),
        "img_per_s": med,
        "rounds": sides,
        "ratio_vs_canonical": {k: med[k] / med["canonical"] for k in med},
    }


def bench_sampling(a: argparse.Namespace, cfg: Any, spec: Any) -> dict[str, Any]:
    from cxraug_diffusion import Diffusion

    torch.manual_seed(0)
    gen = Diffusion(cfg, spec, seed=0)
    device = torch.device(a.device) if a.device else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    gen.to(device)
    labels = torch.arange(a.sample_n) % spec.num_classes
    out: dict[str, Any] = {}
    for item in a.samplers.split(","):
        sampler, steps = item.split(":")
        opts = gen.parse_sample_options({"sampler": sampler, "steps": int(steps)})
        sync(device)
        t0 = time.perf_counter()
        gen.sample(labels, generator=torch.Generator().manual_seed(0), options=opts)
        sync(device)
        dt = time.perf_counter() - t0
        out[f"{sampler}-{steps}"] = {"seconds": dt, "img_per_s": a.sample_n / dt}
    slowest = min(v["img_per_s"] for v in out.values())
    for v in out.values():
        v["speedup_vs_slowest"] = v["img_per_s"] / slowest
    return out


def main() -> None:
    from rich.console import Console
    from rich.table import Table

    from cxraug.classes import NIH_CLASSES
    from cxraug.generator import DataSpec

    a = parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    console = Console()
    cfg = model_config(a)
    spec = DataSpec(classes=tuple(NIH_CLASSES), size=a.size)
    cfg.check_size(a.size)
    with tempfile.TemporaryDirectory(prefix="cxraug-diffusion-speed-") as tmp:
        train = bench_training(a, cfg, spec, Path(tmp))
    samp = bench_sampling(a, cfg, spec)

    what = (
        f"UNet {list(cfg.block_out_channels)} x{cfg.layers_per_block} "
        f"(attention at {list(cfg.attention_resolutions) or 'none'}), {train['params'] / 1e6:.2f}M params, "
        f"{a.size} px, 1 channel, on {train['device']}, {torch.get_num_threads()} threads"
    )
    t = Table(title=f"training: batch {a.batch_size}, median of {a.rounds} rounds x {a.steps} steps; {what}")
    for col in ("side", "img/s", "ratio vs canonical", "rounds (img/s)"):
        t.add_column(col)
    for k, v in train["img_per_s"].items():
        rounds = ", ".join(f"{r:.1f}" for r in train["rounds"][k])
        t.add_row(k, f"{v:.1f}", f"{train['ratio_vs_canonical'][k]:.3f}", rounds)
    console.print(t)
    s = Table(title=f"sampling: {a.sample_n} images, seed 0, guidance 1; {what}")
    for col in ("sampler-steps", "seconds", "img/s", "speed-up vs slowest"):
        s.add_column(col)
    for k, v in samp.items():
        s.add_row(k, f"{v['seconds']:.2f}", f"{v['img_per_s']:.2f}", f"{v['speedup_vs_slowest']:.1f}x")
    console.print(s)
    if a.json:
        a.json.write_text(
            json.dumps(
                {"setting": what, "args": {k: str(v) for k, v in vars(a).items()}, "training": train, "sampling": samp},
                indent=2,
            )
        )
        console.print(f"wrote {a.json}")


if __name__ == "__main__":
    main()
