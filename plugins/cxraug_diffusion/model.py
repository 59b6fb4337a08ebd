"""The denoising UNet (diffusers UNet2DModel) and the EMA of its weights."""

from __future__ import annotations

import torch
from torch import nn

from cxraug.generator import DataSpec

from .config import DiffusionConfig


def build_unet(config: DiffusionConfig, spec: DataSpec) -> nn.Module:
    """A class-conditional UNet; class index ``spec.num_classes`` is the null (unconditional) class."""
    from diffusers import UNet2DModel

    config.check_size(spec.size)
    attn = [r in config.attention_resolutions for r in config.block_resolutions(spec.size)]
    return UNet2DModel(
        sample_size=spec.size,
        in_channels=spec.channels,
        out_channels=spec.channels,
        block_out_channels=tuple(config.block_out_channels),
        layers_per_block=config.layers_per_block,
        down_block_types=tuple("AttnDownBlock2D" if a else "DownBlock2D" for a in attn),
        up_block_types=tuple("AttnUpBlock2D" if a else "UpBlock2D" for a in reversed(attn)),
        add_attention=config.mid_attention,
        attention_head_dim=config.attention_head_dim,
        norm_num_groups=config.groups,
        dropout=config.dropout,
        num_class_embeds=spec.num_classes + 1,
    )


class EMA:
    """Exponential moving average of a module's parameters, kept in a separate copy of the module.

    The copy is what sampling and export use. Its update count is part of the state because the
    warm-up decay depends on it (exact resume).
    """

    def __init__(self, model: nn.Module, decay: float, warmup: bool) -> None:
        import copy

        self.model = copy.deepcopy(model).eval().requires_grad_(False)
        self.decay = decay
        self.warmup = warmup
        self.updates = 0

    def current_decay(self) -> float:
        if not self.warmup:
            return self.decay
        return min(self.decay, (1 + self.updates) / (10 + self.updates))

    @torch.no_grad()
    def update(self, params: list[torch.Tensor]) -> None:
        """Move the EMA towards ``params`` (the live model's parameters, same order)."""
        weight = 1.0 - self.current_decay()
        ema_params = list(self.model.parameters())
        torch._foreach_lerp_(
            ema_params, [p.detach().to(e.dtype) for p, e in zip(params, ema_params, strict=True)], weight
        )
        self.updates += 1

    def state_dict(self) -> dict[str, object]:
        return {"weights": self.model.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict[str, object]) -> None:
        self.model.load_state_dict(state["weights"])  # type: ignore[arg-type]
        self.updates = int(state["updates"])  # type: ignore[arg-type]
