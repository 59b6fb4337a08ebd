"""The shared classifier: 1-channel torchvision networks built offline, and local weights
adapted (3-channel stem summed to 1 channel, head of another class count skipped)."""

from __future__ import annotations

import pytest
import torch
import torchvision
from safetensors.torch import save_file

from cxraug.classify.models import build_classifier, load_weights
from cxraug.errors import UserError


@pytest.mark.parametrize("name", ["tiny", "resnet18", "densenet121"])
def test_models_take_one_channel_and_give_one_logit_per_class(name):
    model = build_classifier(name, num_classes=3).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 1, 32, 32)).shape == (2, 3)


def test_unknown_model_is_a_user_error():
    with pytest.raises(UserError, match="unknown model 'vgg99'; known: resnet18"):
        build_classifier("vgg99", 2)


@pytest.mark.parametrize("fmt", ["safetensors", "pt"])
def test_rgb_imagenet_style_weights_are_adapted(tmp_path, fmt):
    torch.manual_seed(0)
    rgb = torchvision.models.resnet18(weights=None)  # 3 channels, 1000 classes, as a hub file would be
    state = {k: v.contiguous() for k, v in rgb.state_dict().items()}
    path = tmp_path / f"w.{fmt}"
    if fmt == "safetensors":
        save_file(state, str(path))
    else:
        torch.save({"state_dict": state}, path)
    model = build_classifier("resnet18", 2, weights=path)
    assert torch.allclose(model.conv1.weight, state["conv1.weight"].sum(dim=1, keepdim=True))
    assert torch.equal(model.layer3[0].conv1.weight, state["layer3.0.conv1.weight"])
    assert model.fc.weight.shape == (2, 512)  # the 1000-class head was skipped
    # A grey image through the adapted net = its grey RGB copy through the original body.
    x = torch.rand(1, 1, 32, 32)
    assert torch.allclose(model.conv1(x), rgb.conv1(x.repeat(1, 3, 1, 1)), atol=1e-5)


def test_weights_of_another_architecture_are_refused(tmp_path):
    path = tmp_path / "tiny.safetensors"
    save_file(build_classifier("tiny", 2).state_dict(), str(path))
    with pytest.raises(UserError, match="fit only 0 of"):
        load_weights(build_classifier("resnet18", 2), path)
    bad = tmp_path / "junk.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="cannot read weights"):
        load_weights(build_classifier("tiny", 2), bad)
