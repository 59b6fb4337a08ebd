"""The standard FID network on real chest X-rays (skips without ../shared data), and against
torch-fidelity's reference module on generated images (needs only the weights).

Inception costs ~0.1-1 s per image on a CPU: about 120 images in all, features computed once
per session and reused by every test here.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from cxraug.data.prepared import open_prepared
from cxraug.metrics import memorization as mem
from cxraug.metrics.stats import frechet_distance, kernel_inception_distance, precision_recall

N = 24  # images per set


def _blur(images: np.ndarray, sigma: float) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    out = [np.clip(np.round(gaussian_filter(im.astype(np.float64), sigma)), 0, 255) for im in images]
    return np.stack(out).astype(np.uint8)


@pytest.fixture(scope="session")
def extractor():
    from cxraug.errors import UserError
    from cxraug.metrics.features import load_feature_extractor

    try:
        return load_feature_extractor(device="cpu")
    except UserError as e:  # weights not installed: the message says how to get them
        pytest.skip(str(e))


@pytest.fixture(scope="session")
def sets(nih64: Path, extractor) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """name -> (uint8 images, Inception features): two disjoint real sets of 'No Finding'
    training images, blurred copies of the first, and noise."""
    data = open_prepared(nih64)
    idx = np.flatnonzero(data.labels("train") == data.classes.index("No Finding"))
    images = np.asarray(data.images("train")[idx[: 2 * N]])
    raw = {
        "a": images[:N],
        "b": images[N:],
        "blur1.5": _blur(images[:N], 1.5),
        "blur4": _blur(images[:N], 4.0),
        "noise": np.random.default_rng(0).integers(0, 256, (N // 2, data.size, data.size), dtype=np.uint8),
    }
    return {k: (v, extractor.extract(v, batch_size=N)) for k, v in raw.items()}


def test_features_are_2048_finite_and_recorded(sets, extractor) -> None:
    feats = sets["a"][1]
    assert feats.shape == (N, 2048) and feats.dtype == np.float32 and np.isfinite(feats).all()
    info = extractor.describe()
    assert info["extractor"] == "inception-v3-tf-2015-12-05-pool3" and len(info["weights_sha256"]) == 64
    assert info["weights_reference"] is True


def test_fid_of_a_real_set_against_itself_is_zero(sets) -> None:
    assert abs(frechet_distance(sets["a"][1], sets["a"][1])) < 1e-6
    assert frechet_distance(sets["a"][1], sets["b"][1]) > 1.0  # other images of the class: not zero


def test_fid_grows_with_blur_and_noise_is_far(sets) -> None:
    ref = sets["b"][1]
    fids = [frechet_distance(ref, sets[k][1]) for k in ("a", "blur1.5", "blur4", "noise")]
    assert fids == sorted(fids), fids
    assert fids[1] > 1.3 * fids[0] and fids[3] > 300, fids


def test_kid_of_two_halves_of_one_class_is_near_zero(sets) -> None:
    halves, _ = kernel_inception_distance(sets["a"][1], sets["b"][1], subset_size=N // 2, subsets=50)
    blurred, _ = kernel_inception_distance(sets["b"][1], sets["blur1.5"][1], subset_size=N // 2, subsets=50)
    assert abs(halves) < 0.025 and blurred > 10 * abs(halves), (halves, blurred)


def test_precision_recall_separate_real_from_noise(sets) -> None:
    p_real, r_real = precision_recall(sets["b"][1], sets["a"][1])
    p_noise, r_noise = precision_recall(sets["b"][1], sets["noise"][1])
    assert p_real > 0.5 and r_real > 0.5 and p_noise == 0.0 and r_noise == 0.0


def test_memorization_flags_copies_not_blur_or_noise(sets) -> None:
    (a, fa), (b, fb) = sets["a"], sets["b"]
    cfg = mem.MemorizationConfig(min_calibration=N)

    def check(syn: tuple[np.ndarray, np.ndarray]) -> mem.MemorizationResult:
        # "train" = set a, calibration "val" = set b (other images of the class).
        return mem.assess([mem.neighbours("No Finding", syn[0], syn[1], a, fa, b, fb)], cfg)

    copies = check((a[:12], fa[:12]))
    assert copies.flagged and copies.overall["near_copies"] == 12 and copies.overall["share_below_features"] == 1.0
    # Blurred training images are close in pixels but not in features: not a copy.
    blurred = check((sets["blur4"][0][:12], sets["blur4"][1][:12]))
    assert not blurred.flagged and blurred.overall["share_below_features"] < cfg.alarm_share
    assert not check(sets["noise"]).flagged


def _generated_images(n: int = 3, size: int = 64) -> np.ndarray:
    """uint8 grey images with structure at several scales (smoothed noise plus a gradient), so
    every layer sees more than a flat field; no dataset needed."""
    rng = np.random.default_rng(11)
    ramp = np.linspace(0, 80, size)[None, :, None]
    noise = rng.normal(128, 60, (size, size, n))
    from scipy.ndimage import gaussian_filter

    smooth = np.stack([gaussian_filter(noise[..., i], s) for i, s in enumerate((1.0, 2.5, 5.0)[:n])], -1)
    return np.clip(smooth + ramp, 0, 255).astype(np.uint8).transpose(2, 0, 1)


def test_two_weight_forms_and_torch_fidelity_agree(extractor, tmp_path: Path) -> None:
    """TorchScript file vs torch-fidelity state dict (copied layer by layer), and our grey
    pipeline vs torch-fidelity's own (the network torchmetrics runs) and the raw TorchScript,
    on generated images: it runs wherever the weights are installed, without the NIH data."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
    from torch_fidelity.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x

    from cxraug.metrics.features import load_feature_extractor
    from cxraug.metrics.inception import state_dict_from_torchscript

    images = _generated_images()
    ours = extractor.extract(images)
    sd = state_dict_from_torchscript(extractor.weights.path)
    sd = {**sd, "fc.weight": torch.zeros(1008, 2048), "fc.bias": torch.zeros(1008)}  # logits: unused
    pth = tmp_path / "pt_inception-2015-12-05.pth"
    torch.save(sd, pth)

    other = load_feature_extractor(pth, "cpu")
    assert other.weights.form == "torch-fidelity" and other.weights.reference is False
    assert other.identity != extractor.identity  # caches keep the two apart
    assert np.abs(other.extract(images) - ours).max() < 1e-4

    rgb = torch.from_numpy(images)[:, None].repeat(1, 3, 1, 1)
    fidelity = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"], feature_extractor_weights_path=str(pth))
    with torch.no_grad():
        theirs = fidelity(rgb)[0].numpy()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch.jit.load's deprecation notice
            script = torch.jit.load(str(extractor.weights.path), map_location="cpu")
        x = interpolate_bilinear_2d_like_tensorflow1x(rgb.float(), size=(299, 299), align_corners=False)
        raw = script((x - 128) / 128).numpy()
    assert np.abs(theirs - ours).max() < 1e-4
    assert np.abs(raw - ours).max() < 1e-4


def test_score_end_to_end_with_inception_records_what_it_used(nih64: Path, extractor, tmp_path: Path) -> None:
    from test_score_support import copying_generator

    from cxraug.metrics.score import ScoreConfig, score
    from cxraug.metrics.sources import generator_source

    data = open_prepared(nih64)
    cfg = ScoreConfig(n=6, classes=["Pneumonia"], cache_dir=tmp_path / "cache")
    result = score(data, generator_source(copying_generator(nih64)), cfg, extractor)
    row = result.rows[0]
    assert row["class"] == "Pneumonia" and row["n_fake"] == 6 and row["n_real"] == data.counts("val")["Pneumonia"]
    assert row["status"].startswith("too few images") and "fid" not in row
    assert row["weights_sha256"] == extractor.weights.sha256 and row["size"] == 64 and row["split"] == "val"
    # Too few validation images to calibrate; the copies are still caught as near-copies.
    assert result.memorization.threshold_px is None and result.memorization.flagged
    assert result.memorization.overall["near_copies"] == 6
    cached = list((tmp_path / "cache").glob("*.safetensors"))
    assert {p.name.split("-")[0] for p in cached} == {"val", "train"}
