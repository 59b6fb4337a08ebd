"""The Generator contract: the only thing a generator plugin implements (docs/plugins.md).

A plugin is a class with a pydantic ``Config`` (unknown keys rejected), built from that config
and a :class:`DataSpec` without doing any I/O. The core training loop (cxraug.train) calls
``setup(accelerator)`` once, then ``train_step`` per batch, and saves/restores ``state()``
for exact resume. ``sample`` turns class labels into images in [-1, 1]; ``export`` writes
safetensors weights + JSON config that ``from_export`` rebuilds without the training code.

Plugins never create an Accelerator, never download anything and never print: the core
does those. A setting the plugin cannot honour is a :class:`cxraug.errors.UserError` (one
line, exit code 2). All randomness of a step comes from ``self.rng`` (a CPU torch.Generator),
and the plugin puts its state in ``state()`` (the core saves only what ``state()`` returns),
so a resumed run repeats a straight one exactly. Modules that can only draw from torch's
global RNG (dropout) get it seeded per step by the loop (cxraug.rng.step_rng), so they stay
exact too. ``cxraug.testing`` checks all of this on a plugin.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from pydantic import BaseModel, ConfigDict, ValidationError

from cxraug.accel import RunAccelerator
from cxraug.errors import UserError
from cxraug.rng import derive_seed

WEIGHTS_FILE = "weights.safetensors"
CONFIG_FILE = "config.json"


class PluginConfig(BaseModel):
    """Base of every plugin config: typos are errors, not silently ignored keys."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())


class SampleOptions(BaseModel):
    """Base of a plugin's sampling options (``cxraug synth --set key=value``); a plugin's own
    options subclass it (the registry refuses a plugin whose options do not)."""

    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class DataSpec:
    """What a generator knows of the data: class names (label i = classes[i]) and size. Images
    are grey: ``channels`` is always 1 (prepare writes one channel; nothing reads more)."""

    classes: tuple[str, ...]
    size: int

    @property
    def channels(self) -> int:
        return 1

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "classes": list(self.classes), "channels": self.channels}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DataSpec:
        channels = d.get("channels", 1)
        if channels != 1:
            raise UserError(
                f"this model was made for images of {channels} channels; cxraug handles grey images "
                "(1 channel) only: export it from a model trained on cxraug's prepared data"
            )
        return cls(classes=tuple(d["classes"]), size=int(d["size"]))


SEED_SPACE = 2**62  # per-step seeds; + process index stays within int64


class Generator(ABC):
    """A class-conditional image generator trained by cxraug's loop."""

    name: ClassVar[str]
    Config: ClassVar[type[PluginConfig]]
    SampleOptions: ClassVar[type[SampleOptions]] = SampleOptions
    description: ClassVar[str] = ""
    # Sizes the architecture supports (powers of two in range), checked before building.
    min_size: ClassVar[int] = 32
    max_size: ClassVar[int] = 256

    @classmethod
    def sizes(cls) -> list[int]:
        """The image sizes this plugin trains: the powers of two from min_size to max_size
        (override for another rule). prepare warns at a size no installed plugin lists."""
        return [
            1 << k
            for k in range(max(cls.min_size, 1).bit_length() - 1, cls.max_size.bit_length())
            if cls.min_size <= 1 << k <= cls.max_size
        ]

    def __init__(self, config: PluginConfig, spec: DataSpec, seed: int = 0) -> None:
        self.config = config
        self.spec = spec
        # The same on every process; per-process draws go through step_generator, so the
        # main process's checkpoint restores every process exactly.
        self.rng = torch.Generator().manual_seed(seed)
        try:
            self.build()
        except ValidationError as e:
            # A plugin validating settings of its own in build() (a nested or derived pydantic
            # model) gets the one line that --set values get, not a traceback.
            from cxraug.config import validation_message
            from cxraug.errors import UserError

            raise UserError(validation_message(e, type(config), f"{self.name} model key")) from None

    def step_generator(self, process_index: int, device: torch.device | None = None) -> torch.Generator:
        """This training step's generator: one draw from ``self.rng`` (whose state alone then
        fixes the rest of the run), offset by the process index so processes draw different
        noise. On ``device`` when given (CUDA: no host-to-device copy of the noise)."""
        seed = derive_seed(int(torch.randint(0, SEED_SPACE, (1,), generator=self.rng)), process_index, scheme="affine")
        where = device if device is not None and device.type in ("cpu", "cuda") else torch.device("cpu")
        return torch.Generator(device=where).manual_seed(seed)

    # --- building and training -------------------------------------------------------------
    @abstractmethod
    def build(self) -> None:
        """Create the modules (on CPU) from ``self.config`` and ``self.spec``. Called by
        __init__ (also to check a config before a run starts); no I/O. A setting that cannot
        be built (a size the architecture does not take, a bad combination) raises
        :class:`cxraug.errors.UserError` naming the key and what to do."""

    @abstractmethod
    def setup(self, accelerator: RunAccelerator) -> None:
        """Create optimizers and ``accelerator.prepare`` the trainable modules."""

    @abstractmethod
    def train_step(self, images: torch.Tensor, labels: torch.Tensor, accelerator: RunAccelerator) -> dict[str, float]:
        """One optimisation step on a batch (images in [-1, 1], N x C x S x S); returns losses."""

    @abstractmethod
    def state(self) -> dict[str, Any]:
        """Everything needed to resume exactly: weights, EMA, optimizers, augmentation state and
        ``self.rng.get_state()`` (the core saves only this dict: without the rng a resumed run
        draws other noise). Tensors, numbers, strings, lists and dicts only (loaded with
        weights_only=True)."""

    @abstractmethod
    def load_state(self, state: dict[str, Any]) -> None:
        """Restore ``state()``, ``self.rng.set_state(...)`` included; called after ``setup``."""

    # --- sampling and export -----------------------------------------------------------------
    @abstractmethod
    def sample(
        self,
        labels: torch.Tensor,
        generator: torch.Generator | None = None,
        options: SampleOptions | None = None,
    ) -> torch.Tensor:
        """Images for ``labels`` (long, N; the core passes them on the CPU, so move them to
        ``self.device``), in [-1, 1], float32, N x C x S x S, on ``self.device``. Noise is
        drawn on the CPU from ``generator`` so that a seed gives the same images on any device;
        ``generator`` None means a fixed default seed, never ``self.rng`` (sampling must not
        move training's random stream). ``options`` None means ``SampleOptions()``. The core
        also calls it during training, for sample grids and training-time FID, so it leaves
        the training state as it found it (and is best decorated ``@torch.no_grad()``)."""

    @abstractmethod
    def export_tensors(self) -> dict[str, torch.Tensor]:
        """The weights used for sampling (e.g. the EMA generator), flat name -> tensor."""

    @abstractmethod
    def load_export_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        """Inverse of ``export_tensors``."""

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")

    def to(self, device: torch.device | str) -> Generator:
        """Move the sampling weights to ``device`` (plugins override for their modules)."""
        return self

    # --- provided: export / rebuild ----------------------------------------------------------
    def export(self, directory: Path, extra: dict[str, Any] | None = None) -> None:
        """Write weights + config as one folder that replaces the old one whole (a crash
        leaves the previous export); the config records the weights' sha256."""
        from safetensors.torch import save

        from cxraug.fsutil import atomic_dir, write_json

        tensors = {k: v.detach().cpu().contiguous() for k, v in self.export_tensors().items()}
        data = save(tensors)
        with atomic_dir(Path(directory), overwrite=True) as stage:
            (stage / WEIGHTS_FILE).write_bytes(data)
            write_json(
                stage / CONFIG_FILE,
                {
                    "plugin": self.name,
                    "config": self.config.model_dump(mode="json"),
                    "data_spec": self.spec.to_dict(),
                    "weights_sha256": hashlib.sha256(data).hexdigest(),
                    **(extra or {}),
                },
            )

    @classmethod
    def from_export(cls, directory: Path) -> Generator:
        """Rebuild from :meth:`export`; a damaged or edited export is a one-line UserError."""
        from safetensors import SafetensorError
        from safetensors.torch import load

        from cxraug.config import validated
        from cxraug.fsutil import read_json, short

        directory = Path(directory)
        meta = read_json(directory / CONFIG_FILE)
        data = (directory / WEIGHTS_FILE).read_bytes()
        expected = meta.get("weights_sha256") if isinstance(meta, dict) else None
        if expected is None:
            raise UserError(
                f"{directory / CONFIG_FILE} records no weights_sha256, so {WEIGHTS_FILE} cannot be verified; "
                "export it again (resume the run with more --steps)"
            )
        if hashlib.sha256(data).hexdigest() != expected:
            raise UserError(
                f"{directory / WEIGHTS_FILE} is damaged (its sha256 differs from the one in {CONFIG_FILE}); "
                "it is not used: restore it, or resume the run with more --steps to write a new one"
            )
        try:
            config = validated(cls.Config, meta["config"], f"{directory / CONFIG_FILE} model")
            spec = DataSpec.from_dict(meta["data_spec"])
            tensors = load(data)
        except (KeyError, TypeError, ValueError, SafetensorError) as e:
            raise UserError(f"{directory} is not a readable cxraug export ({type(e).__name__}: {e})") from None
        model = cls(config, spec)
        try:
            model.load_export_tensors(tensors)
        except RuntimeError as e:  # torch's load_state_dict: a tensor missing, extra or of another shape
            if not str(e).startswith("Error(s) in loading state_dict"):
                raise
            first = next((ln.strip() for ln in str(e).splitlines()[1:] if ln.strip()), "")
            raise UserError(
                f"{directory / WEIGHTS_FILE} does not fit the model its {CONFIG_FILE} describes ({short(first, 120)}); "
                "export the run again (resume it with more --steps)"
            ) from None
        return model

    @classmethod
    def tiny_config(cls) -> dict[str, Any]:
        """Config overrides for a model small enough for tests (the contract suite uses it)."""
        return {}

    def parse_sample_options(self, values: dict[str, Any]) -> SampleOptions:
        """``--set`` values as this plugin's SampleOptions; a bad one is a one-line UserError."""
        from cxraug.config import validated

        return validated(self.SampleOptions, values, f"{self.name} sampling option")
