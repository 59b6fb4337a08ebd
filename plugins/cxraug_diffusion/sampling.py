"""Class-conditional sampling over diffusers' schedulers, with classifier-free guidance.

diffusers' pipelines do not pass class labels to the UNet, so the loop is ours: it works on
any ``model_fn(x_t, t, labels) -> model output`` (the UNet, or an oracle in tests) and any
of DDIM, DPM-Solver++ (multistep) and DDPM, each built from the training noise schedule.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch

from .config import DiffusionSampleOptions

if TYPE_CHECKING:
    from diffusers import SchedulerMixin

ModelFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def make_scheduler(options: DiffusionSampleOptions, schedule: dict[str, Any]) -> SchedulerMixin:
    """A fresh scheduler (they hold per-run state) for the training noise ``schedule``."""
    from diffusers import DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler

    if options.sampler == "ddim":
        # "trailing" spacing starts at t = T-1 (pure noise) and ends at alpha_bar = 1 (a clean image).
        return DDIMScheduler(**schedule, clip_sample=options.clip, set_alpha_to_one=True, timestep_spacing="trailing")
    if options.sampler == "dpmsolver++":
        # Thresholding with sample_max_value=1 is plain clipping of the predicted x0 to [-1, 1].
        return DPMSolverMultistepScheduler(
            **schedule,
            algorithm_type="dpmsolver++",
            solver_order=2,
            thresholding=options.clip,
            sample_max_value=1.0,
        )
    return DDPMScheduler(**schedule, clip_sample=options.clip, variance_type="fixed_small", timestep_spacing="trailing")


def guided(model_fn: ModelFn, guidance: float, null_label: int) -> ModelFn:
    """Classifier-free guidance: out = uncond + g * (cond - uncond), on the model's raw output
    (epsilon or v; both are linear in the noise given x_t, so guiding either is the same)."""
    if guidance == 1.0:
        return model_fn  # the conditional model alone: no unconditional pass

    def fn(x: torch.Tensor, t: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        null = torch.full_like(labels, null_label)
        if guidance == 0.0:
            return model_fn(x, t, null)
        out = model_fn(torch.cat([x, x]), torch.cat([t, t]), torch.cat([labels, null]))
        cond, uncond = out.chunk(2)
        return uncond + guidance * (cond - uncond)

    return fn


def denoise(
    model_fn: ModelFn,
    noise: torch.Tensor,
    labels: torch.Tensor,
    scheduler: SchedulerMixin,
    steps: int,
    eta: float = 0.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Run the reverse process from ``noise`` (N x C x S x S) for ``labels``; returns x_0.

    ``generator`` feeds the stochastic steps (DDPM, DDIM with eta > 0); diffusers draws that
    noise on the generator's device (the CPU) and moves it, so a seed gives the same images
    on any device.
    """
    from diffusers import DDIMScheduler

    scheduler.set_timesteps(steps, device=noise.device)
    x = noise * scheduler.init_noise_sigma
    n = x.shape[0]
    extra: dict[str, Any] = {"generator": generator}
    if isinstance(scheduler, DDIMScheduler):
        extra["eta"] = eta
    elif eta:
        raise ValueError(f"eta applies to DDIM only, not {type(scheduler).__name__}")
    for t in scheduler.timesteps:
        t_batch = t.reshape(1).expand(n).to(x.device)
        out = model_fn(scheduler.scale_model_input(x, t), t_batch, labels)
        x = scheduler.step(out, t, x, **extra).prev_sample
    return x
