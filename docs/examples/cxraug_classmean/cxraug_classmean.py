"""A complete third-party cxraug generator plugin, kept small on purpose.

It learns one mean image and one per-pixel log-std per class by gradient descent on the
Gaussian negative log-likelihood of the (dequantized) images, and samples mean + std * noise.
Not a good generator: a readable example of the contract (see docs/plugins.md). Registered
by this folder's pyproject.toml:

    [project.entry-points."cxraug.generators"]
    classmean = "cxraug_classmean:ClassMean"
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from pydantic import Field
from torch import nn

from cxraug.generator import Generator, PluginConfig, SampleOptions


class ClassMeanConfig(PluginConfig):
    lr: float = Field(0.05, gt=0)
    # Uniform noise of one 8-bit level added to each training image (dequantization, as
    # likelihood models of 8-bit images do): the random draw that exact resume must repeat.
    dequantize: bool = True


class ClassMeanSampleOptions(SampleOptions):
    temperature: float = Field(1.0, ge=0, description="scale of the per-pixel std when sampling")


class ClassMean(Generator):
    name: ClassVar[str] = "classmean"
    Config = ClassMeanConfig
    SampleOptions = ClassMeanSampleOptions
    description: ClassVar[str] = "per-class Gaussian image model (documentation example)"

    config: ClassMeanConfig

    def build(self) -> None:
        k, c, s = self.spec.num_classes, self.spec.channels, self.spec.size
        self.params = nn.ParameterDict(
            {"mean": nn.Parameter(torch.zeros(k, c, s, s)), "log_std": nn.Parameter(torch.zeros(k, c, s, s))}
        )
        self.opt: Any = None

    def setup(self, accelerator: Any) -> None:
        opt = torch.optim.Adam(self.params.parameters(), lr=self.config.lr)
        prepared, self.opt = accelerator.prepare(self.params, opt)
        self.params = accelerator.unwrap_model(prepared)  # the module itself, whatever wraps it

    def train_step(self, images: torch.Tensor, labels: torch.Tensor, accelerator: Any) -> dict[str, float]:
        p = self.params
        if self.config.dequantize:
            # Every random draw of a step comes from step_generator (seeded from self.rng).
            g = self.step_generator(accelerator.process_index, images.device)
            u = torch.rand(images.shape, generator=g, device=g.device).to(images.device)
            images = images + (u - 0.5) * (2 / 255)
        mean, log_std = p["mean"][labels], p["log_std"][labels]
        nll = (((images - mean) / log_std.exp()) ** 2 / 2 + log_std).mean()
        self.opt.zero_grad()
        accelerator.backward(nll)
        self.opt.step()
        return {"nll": nll.item()}

    def state(self) -> dict[str, Any]:
        # self.rng is the plugin's to save: the core checkpoints exactly this dict.
        opt = self.opt.state_dict() if self.opt else {}
        return {"params": self.params.state_dict(), "opt": opt, "rng": self.rng.get_state()}

    def load_state(self, state: dict[str, Any]) -> None:
        self.params.load_state_dict(state["params"])
        if self.opt is not None:
            self.opt.load_state_dict(state["opt"])
        self.rng.set_state(state["rng"])

    @torch.no_grad()
    def sample(
        self,
        labels: torch.Tensor,
        generator: torch.Generator | None = None,
        options: ClassMeanSampleOptions | None = None,
    ) -> torch.Tensor:
        opts = options or ClassMeanSampleOptions()
        g = generator or torch.Generator().manual_seed(0)  # never self.rng: sampling leaves training alone
        mean, log_std = self.params["mean"], self.params["log_std"]
        noise = torch.randn((len(labels), *mean.shape[1:]), generator=g).to(mean.device)  # CPU noise
        labels = labels.to(mean.device)
        return (mean[labels] + opts.temperature * log_std[labels].exp() * noise).clamp(-1, 1).float()

    @property
    def device(self) -> torch.device:
        return self.params["mean"].device

    def to(self, device: torch.device | str) -> ClassMean:
        self.params.to(device)
        return self

    def export_tensors(self) -> dict[str, torch.Tensor]:
        return {k: v.detach() for k, v in self.params.items()}

    def load_export_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        with torch.no_grad():
            for k, v in tensors.items():
                self.params[k].copy_(v)
