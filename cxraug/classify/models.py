"""The shared classifier: a torchvision network adapted to 1 grey channel, or a tiny CNN for
tests. Built from scratch (``weights=None``: nothing is ever downloaded) or from a local
weights file, whose 3-channel first convolution is summed to 1 channel (an RGB network then
answers a grey image exactly as it would its grey RGB copy) and whose head is dropped when
the class count differs."""

from __future__ import annotations

import pickle
from pathlib import Path

import torch
from torch import nn

from cxraug.errors import UserError

TORCHVISION_MODELS = (
    "resnet18",
    "resnet34",
    "resnet50",
    "densenet121",
    "efficientnet_b0",
    "mobilenet_v3_small",
    "convnext_tiny",
)
MODELS = (*TORCHVISION_MODELS, "tiny")


class TinyCNN(nn.Module):
    """Three conv blocks and a linear head: seconds per epoch on a CPU, for tests and demos."""

    def __init__(self, num_classes: int, width: int = 16) -> None:
        super().__init__()

        def block(cin: int, cout: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(), nn.MaxPool2d(2))

        self.features = nn.Sequential(block(1, width), block(width, 2 * width), block(2 * width, 4 * width))
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4 * width, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def _to_one_channel(model: nn.Module) -> None:
    """Replace the first 3-channel convolution by a 1-channel one of the same shape otherwise."""
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d) and module.in_channels == 3:
            conv = nn.Conv2d(
                1,
                module.out_channels,
                module.kernel_size,
                module.stride,
                module.padding,
                module.dilation,
                module.groups,
                module.bias is not None,
                module.padding_mode,
            )
            parent = model.get_submodule(name.rpartition(".")[0]) if "." in name else model
            setattr(parent, name.rpartition(".")[2], conv)
            return
    raise ValueError("no 3-channel input convolution found")


def build_classifier(name: str, num_classes: int, weights: Path | None = None) -> nn.Module:
    if name not in MODELS:
        raise UserError(f"unknown model {name!r}; known: {', '.join(MODELS)}")
    if name == "tiny":
        model: nn.Module = TinyCNN(num_classes)
    else:
        import torchvision

        model = getattr(torchvision.models, name)(weights=None, num_classes=num_classes)
        _to_one_channel(model)
    if weights is not None:
        load_weights(model, Path(weights))
    return model


def _read_state(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise UserError(f"weights file {path} does not exist")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except SafetensorError as e:
            raise UserError(f"cannot read weights {path} (not a whole safetensors file: {e})") from None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:  # also weights_only refusing an object that would run code
        raise UserError(
            f"cannot read weights {path}: not a plain tensor file (torch refuses objects that would run code "
            "when loaded); give a safetensors or torch state dict"
        ) from None
    except (RuntimeError, EOFError, OSError) as e:  # torch's reader on a damaged or foreign file
        raise UserError(
            f"cannot read weights {path} ({type(e).__name__}); give a safetensors or torch state dict"
        ) from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise UserError(f"{path} does not hold a state dict of tensors")
    return {k.removeprefix("module."): v for k, v in state.items() if isinstance(v, torch.Tensor)}


def load_weights(model: nn.Module, path: Path) -> dict[str, int]:
    """Load what fits; adapt the input convolution; skip a head of another class count."""
    state = _read_state(path)
    own = model.state_dict()
    usable: dict[str, torch.Tensor] = {}
    skipped = 0
    for k, v in state.items():
        if k not in own:
            skipped += 1
            continue
        target = own[k]
        if (
            v.ndim == 4
            and target.ndim == 4
            and v.shape[1] == 3
            and target.shape[1] == 1
            and v.shape[0] == target.shape[0]
        ):
            v = v.sum(dim=1, keepdim=True)
        if v.shape != target.shape:
            skipped += 1
            continue
        usable[k] = v.to(target.dtype)
    if len(usable) < 0.5 * len(own):
        raise UserError(
            f"weights {path} fit only {len(usable)} of {len(own)} tensors of this model; "
            "is it the same architecture (option model)?"
        )
    model.load_state_dict(usable, strict=False)
    return {"loaded": len(usable), "skipped": skipped, "missing": len(own) - len(usable)}
