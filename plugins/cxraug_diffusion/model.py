"""The denoising UNet (diffusers UNet2DModel)."""

from __future__ import annotations

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
