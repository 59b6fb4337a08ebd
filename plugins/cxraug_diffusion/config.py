"""Validated configuration of the diffusion plugin: the UNet, the noise schedule, training.

Defaults are the CPU setting (32 px, ~2.5M-parameter UNet without attention); docs/plugins/
diffusion.md lists the GPU settings (64-256 px, attention, wider blocks), all used by the same code.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field, model_validator

from cxraug.ema import EMASettings
from cxraug.errors import UserError
from cxraug.generator import PluginConfig, SampleOptions

BetaSchedule = Literal["linear", "scaled_linear", "squaredcos_cap_v2"]
# Smallest feature map the UNet may reach: below 4 px the 3x3 convolutions see mostly padding.
MIN_BOTTOM_RES = 4


class DiffusionConfig(EMASettings, PluginConfig):
    """Every key can be set from a YAML file or ``--set key=value``; unknown keys are errors."""

    # --- UNet (diffusers UNet2DModel) -----------------------------------------------------------
    block_out_channels: tuple[int, ...] = Field((32, 64, 128), min_length=1, max_length=6)
    layers_per_block: int = Field(1, ge=1, le=4)
    # Block resolutions (px) whose down/up blocks use self-attention, e.g. [16, 8] at 64 px.
    attention_resolutions: tuple[int, ...] = ()
    mid_attention: bool = False  # self-attention in the bottleneck block
    attention_head_dim: int = Field(32, ge=1)
    # GroupNorm groups; None = the largest of 32, 16, 8, ... that divides every block width and
    # leaves at least 4 channels per group in the narrowest block.
    norm_num_groups: int | None = Field(None, ge=1)
    dropout: float = Field(0.0, ge=0.0, lt=1.0)

    # --- noise schedule and objective (diffusers DDPMScheduler) ---------------------------------
    # v: x0 = sqrt(abar) x_t - sqrt(1-abar) v stays bounded at high noise, where epsilon-prediction
    # amplifies its error by 1/sqrt(abar) (~150 at t=T-1) and few-step solvers then leave speckle.
    prediction_type: Literal["epsilon", "v_prediction"] = "v_prediction"
    num_train_timesteps: int = Field(1000, ge=10, le=10000)
    beta_schedule: BetaSchedule = "linear"
    beta_start: float = Field(1e-4, gt=0.0, lt=1.0)
    beta_end: float = Field(0.02, gt=0.0, lt=1.0)

    # --- optimisation ---------------------------------------------------------------------------
    lr: float = Field(3e-4, gt=0.0, le=1.0)
    lr_warmup_steps: int = Field(100, ge=0)  # linear warm-up from 0, then constant
    weight_decay: float = Field(0.0, ge=0.0)
    adam_betas: tuple[float, float] = (0.9, 0.999)
    adam_eps: float = Field(1e-8, gt=0.0)
    grad_clip: float = Field(1.0, ge=0.0)  # max global grad norm; 0 disables clipping
    # EMA: the shared setting (cxraug.ema), a half-life in images with a ramp-up; diffusion models
    # gain from a longer average than GANs, and short runs are governed by the ramp-up anyway.
    ema_kimg: float = Field(50.0, ge=0, description="EMA half-life in thousands of training images (0: no EMA)")
    # Probability of replacing a label by the null class (classifier-free guidance training).
    cond_drop_prob: float = Field(0.1, ge=0.0, lt=1.0)

    @model_validator(mode="after")
    def _check(self) -> DiffusionConfig:
        if any(c < 1 for c in self.block_out_channels):
            raise ValueError(f"block_out_channels must be positive, got {list(self.block_out_channels)}")
        if self.norm_num_groups is not None:
            bad = [c for c in self.block_out_channels if c % self.norm_num_groups]
            if bad:
                raise ValueError(
                    f"norm_num_groups {self.norm_num_groups} must divide every block width; {bad} do not "
                    f"(leave norm_num_groups unset to choose it automatically)"
                )
        if self.beta_schedule != "squaredcos_cap_v2" and self.beta_end <= self.beta_start:
            raise ValueError(f"beta_end ({self.beta_end}) must be larger than beta_start ({self.beta_start})")
        if not all(0.0 <= b < 1.0 for b in self.adam_betas):
            raise ValueError(f"adam_betas must be in [0, 1), got {list(self.adam_betas)}")
        return self

    @property
    def groups(self) -> int:
        if self.norm_num_groups is not None:
            return self.norm_num_groups
        g = math.gcd(*self.block_out_channels, 32)  # a power of two dividing every width
        while g > 1 and min(self.block_out_channels) // g < 4:
            g //= 2
        return g

    def block_resolutions(self, size: int) -> list[int]:
        """Feature-map size (px) of each down block at image size ``size``."""
        return [size >> i for i in range(len(self.block_out_channels))]

    def check_size(self, size: int) -> None:
        """Raise UserError if this UNet cannot be built for ``size`` px images."""
        n = len(self.block_out_channels)
        if size < 8 or size & (size - 1):
            raise UserError(f"diffusion image size must be a power of two (32 to 256), got {size}")
        if size >> (n - 1) < MIN_BOTTOM_RES:
            raise UserError(
                f"{n} UNet blocks halve {size} px down to {size >> (n - 1)} px (< {MIN_BOTTOM_RES}); "
                f"use at most {int(math.log2(size // MIN_BOTTOM_RES)) + 1} entries in block_out_channels"
            )
        res = self.block_resolutions(size)
        unknown = [r for r in self.attention_resolutions if r not in res]
        if unknown:
            raise UserError(
                f"attention_resolutions {unknown} are not block resolutions at {size} px; "
                f"the blocks work at {', '.join(map(str, res))} px"
            )
        for r, c in zip(res, self.block_out_channels, strict=True):
            if r in self.attention_resolutions and c % self.attention_head_dim:
                raise UserError(
                    f"attention_head_dim {self.attention_head_dim} must divide the width {c} of the "
                    f"{r} px block that uses attention"
                )
        if self.mid_attention and self.block_out_channels[-1] % self.attention_head_dim:
            raise UserError(
                f"attention_head_dim {self.attention_head_dim} must divide the bottleneck width "
                f"{self.block_out_channels[-1]} (mid_attention is on)"
            )

    def schedule_kwargs(self) -> dict[str, object]:
        """The training noise schedule, shared by every diffusers scheduler built for sampling."""
        return {
            "num_train_timesteps": self.num_train_timesteps,
            "beta_schedule": self.beta_schedule,
            "beta_start": self.beta_start,
            "beta_end": self.beta_end,
            "prediction_type": self.prediction_type,
        }


Sampler = Literal["ddim", "dpmsolver++", "ddpm"]
DEFAULT_STEPS: dict[str, int | None] = {"ddim": 50, "dpmsolver++": 20, "ddpm": None}  # None = all


class DiffusionSampleOptions(SampleOptions):
    """``cxraug synth --set key=value`` options of the diffusion plugin."""

    sampler: Sampler = "dpmsolver++"
    # Denoising steps; unset = 50 for ddim, 20 for dpmsolver++, num_train_timesteps for ddpm.
    steps: int | None = Field(None, ge=1)
    # Classifier-free guidance: eps = eps_uncond + guidance * (eps_cond - eps_uncond); 1 = conditional only.
    guidance: float = Field(1.0, ge=0.0, le=50.0)
    eta: float = Field(0.0, ge=0.0, le=1.0)  # DDIM stochasticity (0 = deterministic DDIM)
    clip: bool = True  # clip the predicted clean image to [-1, 1] at every step

    @model_validator(mode="after")
    def _check(self) -> DiffusionSampleOptions:
        if self.eta and self.sampler != "ddim":
            raise ValueError(f"eta applies to the ddim sampler only, not {self.sampler}")
        return self

    def resolved_steps(self, num_train_timesteps: int) -> int:
        steps = self.steps or DEFAULT_STEPS[self.sampler] or num_train_timesteps
        if steps > num_train_timesteps:
            raise UserError(
                f"steps={steps} exceeds the model's num_train_timesteps={num_train_timesteps}; use fewer steps"
            )
        return steps
