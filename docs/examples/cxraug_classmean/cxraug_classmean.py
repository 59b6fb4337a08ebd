"""A complete third-party cxraug generator plugin, kept small on purpose.

It learns one mean image and one per-pixel log-std per class by gradient descent on the
Gaussian negative log-likelihood, and samples mean + std * noise. Not a good generator:
a readable example of the contract (see docs/plugins.md). Registered in a package's
pyproject.toml with:

    [project.entry-points."cxraug.generators"]
    classmean = "cxraug_classmean:ClassMean"
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from pydantic import Field
from torch import nn

from cxraug.generator import Generator, PluginConfig


class ClassMeanConfig(PluginConfig):
    lr: float = Field(0.05, gt=0)


class ClassMean(Generator):
    name: ClassVar[str] = "classmean"
    Config = ClassMeanConfig
    description: ClassVar[str] = "per-class Gaussian image model (documentation example)"

    def build(self) -> None:
        k, c, s = self.spec.num_classes, self.spec.channels, self.spec.size
        self.model = nn.ParameterDict(
            {"mean": nn.Parameter(torch.zeros(k, c, s, s)), "log_std": nn.Parameter(torch.zeros(k, c, s, s))}
        )
        self.opt: Any = None

    def setup(self, accelerator: Any) -> None:
        opt = torch.optim.Adam(self.model.parameters(), lr=self.config.lr)
        self.model, self.opt = accelerator.prepare(self.model, opt)

    def _params(self) -> nn.ParameterDict:
        return getattr(self.model, "module", self.model)

    def train_step(self, images: torch.Tensor, labels: torch.Tensor, accelerator: Any) -> dict[str, float]:
        p = self._params()
        mean, log_std = p["mean"][labels], p["log_std"][labels]
        nll = (((images - mean) / log_std.exp()) ** 2 / 2 + log_std).mean()
        self.opt.zero_grad()
        accelerator.backward(nll)
        self.opt.step()
        return {"nll": nll.item()}

    def state(self) -> dict[str, Any]:
        return {"model": self._params().state_dict(), "opt": self.opt.state_dict() if self.opt else {}}

    def load_state(self, state: dict[str, Any]) -> None:
        self._params().load_state_dict(state["model"])
        if self.opt is not None:
            self.opt.load_state_dict(state["opt"])

    @torch.no_grad()
    def sample(
        self, labels: torch.Tensor, generator: torch.Generator | None = None, options: Any = None
    ) -> torch.Tensor:
        p = self._params()
        noise = torch.randn((len(labels), *p["mean"].shape[1:]), generator=generator).to(p["mean"].device)
        return (p["mean"][labels] + p["log_std"][labels].exp() * noise).clamp(-1, 1)

    @property
    def device(self) -> torch.device:
        return self._params()["mean"].device

    def to(self, device: torch.device | str) -> ClassMean:
        self._params().to(device)
        return self

    def export_tensors(self) -> dict[str, torch.Tensor]:
        return {k: v.detach() for k, v in self._params().items()}

    def load_export_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        with torch.no_grad():
            for k, v in tensors.items():
                self._params()[k].copy_(v)
