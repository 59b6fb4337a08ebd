"""Configuration of the conditional GAN and its sampling options."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from cxraug.ema import EMASettings
from cxraug.generator import PluginConfig, SampleOptions
from cxraug_cgan.augment import parse_ops


class CGANConfig(EMASettings, PluginConfig):
    """SNGAN/BigGAN-style recipe for small, imbalanced grey-scale data.

    Defaults are sized for 2 CPU cores at 64 px (DCGAN-class compute); on a GPU, widen with
    g_ch/d_ch/max_ch and convs_per_block=2 — the same code scales to 256 px.
    """

    z_dim: int = Field(128, ge=8, description="latent size")
    g_ch: int = Field(16, ge=2, description="generator width at half the output resolution")
    d_ch: int = Field(16, ge=2, description="discriminator width at half the input resolution")
    g_ch4: int | None = Field(None, ge=8, description="generator width at 4 px (None: doubling from g_ch, capped)")
    d_ch4: int | None = Field(None, ge=8, description="discriminator width at 4 px (None: doubling from d_ch, capped)")
    convs_per_block: int = Field(1, ge=1, le=2, description="3x3 convs per residual block (2: SNGAN-style, ~2x cost)")
    max_ch: int = Field(256, ge=8, description="cap on the width of the low-resolution blocks")
    embed_dim: int = Field(128, ge=4, description="shared class embedding feeding conditional BatchNorm")
    lr_g: float = Field(2e-4, gt=0, le=1)
    lr_d: float = Field(2e-4, gt=0, le=1)
    d_steps: int = Field(1, ge=1, le=8, description="D updates per G update (SNGAN: 5, BigGAN: 2)")
    beta1: float = Field(0.0, ge=0, lt=1)
    beta2: float = Field(0.9, ge=0, lt=1)
    d_sn: bool = Field(True, description="spectral norm in D (off: rely on R1, r1_gamma > 0, as StyleGAN2 does)")
    mbstd_group: int = Field(
        4, ge=0, le=64, description="minibatch-std group size in D, against collapse (StyleGAN: 4; 0: off)"
    )
    lecam: float = Field(0.0, ge=0, description="LeCam regularisation weight on D (Tseng et al. 2021; 0: off)")
    lecam_decay: float = Field(0.99, ge=0, lt=1, description="EMA decay of the LeCam anchors (mean D outputs)")
    augment: str = Field("translation,cutout,brightness,contrast", description="DiffAugment ops, or 'none'")
    # Fixed p by default: on small sets the adaptive p never rose and the cgan collapsed within
    # each class (docs/results/gan-quality.md); ADA remains one key away.
    ada_target: float | None = Field(
        None, description="adapt the augmentation probability so E[sign(D(real))] stays near this (None: fixed p)"
    )
    aug_p: float = Field(0.5, ge=0, le=1, description="fixed (or initial, with ada_target) augmentation probability")
    ada_speed_img: int = Field(10_000, ge=1, description="images for p to move by 1 (ADA: 500k)")
    ada_interval: int = Field(4, ge=1, description="steps between adjustments of p")
    r1_gamma: float = Field(0.0, ge=0, description="R1 penalty weight on real images (0: off)")
    r1_every: int = Field(4, ge=1, description="lazy R1: apply every k steps (scaled by k)")
    loss: Literal["hinge", "rpgan"] = Field(
        "hinge", description="hinge (SNGAN/BigGAN) or rpgan: relativistic pairing of each real with a fake (R3GAN)"
    )
    gamma: float = Field(
        0.0, ge=0, description="R1 + R2 weight, every step, on the images before augmentation (R3GAN; 0: off)"
    )
    gamma_fraction: float = Field(
        0.25, gt=0, le=1, description="share of the batch the R1/R2 penalty is computed on (1: all, R3GAN)"
    )
    burnin_kimg: float = Field(
        0.0,
        ge=0,
        description="cosine burn-in, thousands of images: gamma from gamma_burnin_mult x gamma, beta2 from beta2_start",
    )
    gamma_burnin_mult: float = Field(
        10.0, ge=1, description="gamma at the start of the burn-in, times gamma (R3GAN: 10)"
    )
    beta2_start: float | None = Field(
        None,
        ge=0,
        lt=1,
        description="Adam beta2 at the start of the burn-in (R3GAN: 0.9 -> 0.99; None: beta2 throughout)",
    )
    d_act: Literal["relu", "lrelu"] = Field("relu", description="D's activation (R3GAN: leaky ReLU 0.2)")
    d_zero_init: bool = Field(
        False, description="zero-init the last conv of each D residual branch (R3GAN's fix-up; needs d_sn=false)"
    )
    resample: Literal["nearest", "bilinear"] = Field(
        "nearest", description="G's upsampling and D's downsampling (bilinear: low-pass filtered, no grid texture)"
    )
    # Zero padding gives every 3x3 conv a border its interior lacks; at 4 and 8 px that border
    # is a quarter of the map, and bilinear upsampling carries it up as nested frames of lines.
    g_pad: Literal["zeros", "reflect"] = Field(
        "zeros", description="padding of G's 3x3 convs (reflect: no border response, no frame of lines)"
    )
    g_norm: Literal["cbn", "none"] = Field(
        "cbn",
        description="G's normalisation: conditional BatchNorm (BigGAN), or none (R3GAN: class beside z, leaky ReLU, "
        "fix-up init)",
    )
    cond_start_kimg: float | None = Field(
        None, ge=0, description="transitional conditioning: images (thousands) before the class starts to fade in"
    )
    cond_end_kimg: float | None = Field(
        None, gt=0, description="transitional conditioning: images (thousands) at which the class has full weight"
    )
    recon_weight: float = Field(
        0.0,
        ge=0,
        description="self-supervised D: weight of reconstructing each real image at 16 px from D's 8x8 features",
    )
    augself_weight: float = Field(
        0.0,
        ge=0,
        description="AugSelf (Hou et al. 2023): D predicts the augmentation parameters of reals (as given) and of "
        "fakes (negated), G is trained to make its fakes read as reals there; the weight of both losses",
    )
    g_skip_z: bool = Field(
        False,
        description="BigGAN-deep's shared latent: every conditional BatchNorm of G reads [class embedding, z], "
        "so the latent reaches every scale, not only G's input (needs g_norm=cbn)",
    )
    ms_weight: float = Field(
        0.0,
        ge=0,
        description="mode seeking (Mao et al. 2019, MSGAN): G's batch is pairs of one class with two latents, and G "
        "minimises 1/(mean|G(z1)-G(z2)| / mean|z1-z2|), against one image per class; its weight",
    )
    uc_res: int | None = Field(
        None,
        description="UTLO (Khorram et al. 2024): G's blocks up to this resolution (px, 8 .. size/2) are "
        "unconditional and draw an image there, judged by an unconditional branch of D (None: off)",
    )
    uc_weight: float = Field(
        1.0, gt=0, description="UTLO's alpha: the unconditional branch's share of the adversarial loss, alpha/(1+alpha)"
    )
    sync_bn: bool = Field(
        False, description="under several GPU processes, G's BatchNorm statistics over the whole batch (SyncBatchNorm)"
    )
    standing_stats_batches: int = Field(
        16, ge=1, description="batches of 64 used to recompute the EMA generator's BatchNorm statistics"
    )

    @model_validator(mode="after")
    def _consistent(self) -> CGANConfig:
        if self.d_zero_init and self.d_sn:
            raise ValueError("d_zero_init needs d_sn=false (spectral norm cannot normalise a zero weight)")
        if (self.cond_start_kimg is None) != (self.cond_end_kimg is None):
            raise ValueError("set both cond_start_kimg and cond_end_kimg (or neither)")
        if self.cond_end_kimg is not None and self.cond_end_kimg <= (self.cond_start_kimg or 0):
            raise ValueError("cond_end_kimg must be larger than cond_start_kimg")
        if self.uc_res is not None and (self.uc_res < 8 or self.uc_res & (self.uc_res - 1)):
            raise ValueError(f"uc_res must be a power of two from 8 px up (got {self.uc_res})")
        if self.uc_res is not None and self.g_norm != "cbn":
            raise ValueError("uc_res needs g_norm=cbn (a normalisation-free G takes the class at its first layer)")
        if self.g_skip_z and self.g_norm != "cbn":
            raise ValueError("g_skip_z needs g_norm=cbn (it feeds z to the conditional BatchNorms)")
        if self.augself_weight > 0 and _ops_or_unknown(self.augment) == ():
            raise ValueError("augself_weight needs augmentation to predict: set 'augment' (or augself_weight=0)")
        return self


class CGANSampleOptions(SampleOptions):
    truncation: float | None = Field(None, gt=0, description="resample latents with |z| above this (None: off)")


def _ops_or_unknown(spec: str) -> tuple[str, ...] | None:
    """The augmentation ops of ``spec``; None when one is unknown (build() reports that)."""
    try:
        return parse_ops(spec)
    except ValueError:
        return None
