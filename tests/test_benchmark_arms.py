"""Arms build the training sets they claim: controlled imbalance by patient, each ratio mode,
reweighting, balanced sampling, synthetic-only, classical augmentation."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

import numpy as np
import pytest
import torch

from cxraug.benchmark.arms import (
    Arm,
    Ratio,
    add_controls,
    build_train_set,
    check_synthetic_name,
    controlled_real_index,
    expand_arms,
    parse_ratio,
)
from cxraug.benchmark.controls import check_training_rows, control_images, phase_randomise
from cxraug.classify.augment import augment_batch
from cxraug.classify.config import AugmentConfig
from cxraug.classify.fit import EpochSampler
from cxraug.classify.trainset import inverse_frequency_weights
from cxraug.data.prepared import open_prepared
from cxraug.errors import UserError

CLASSES = ["A", "B", "C"]


def _train_patients(root):
    data = open_prepared(root)
    return data, data.labels("train"), data.split_rows("train")["patient_id"].astype(str).to_numpy()


def test_controlled_imbalance_keeps_n_images_chosen_by_patient(phantom32):
    data, labels, patients = _train_patients(phantom32)
    nf = data.classes.index("No Finding")
    before = np.bincount(labels, minlength=len(data.classes))
    keep = controlled_real_index(labels, patients, {nf: 25}, seed=0, classes=data.classes)
    after = np.bincount(labels[keep], minlength=len(data.classes))
    assert after[nf] == 25
    others = np.arange(len(data.classes)) != nf
    assert (after[others] == before[others]).all()  # other classes untouched
    # Whole patients: every kept patient keeps all its No Finding images, except at most one
    # (the last drawn, cut to hit N exactly).
    kept_nf = Counter(patients[keep][labels[keep] == nf])
    all_nf = Counter(patients[labels == nf])
    partial = [p for p, n in kept_nf.items() if n < all_nf[p]]
    assert len(partial) <= 1
    assert len(kept_nf) < 25  # phantom patients have several images: fewer patients than images
    # Deterministic for a seed; another seed keeps other patients.
    assert (controlled_real_index(labels, patients, {nf: 25}, 0, data.classes) == keep).all()
    other = controlled_real_index(labels, patients, {nf: 25}, 1, data.classes)
    assert set(patients[other][labels[other] == nf]) != set(kept_nf)


def test_controlled_imbalance_larger_than_class_is_refused(phantom32):
    data, labels, patients = _train_patients(phantom32)
    h = data.classes.index("Hernia")
    with pytest.raises(UserError, match="only 8 images of Hernia"):
        controlled_real_index(labels, patients, {h: 500}, 0, data.classes)


def _synthetic(n_per_class: dict[int, int], size: int = 4):
    labels = np.concatenate([np.full(n, c) for c, n in n_per_class.items()]).astype(np.int64)
    images = np.arange(len(labels), dtype=np.int64)[:, None, None].repeat(size, 1).repeat(size, 2) % 256
    return images.astype(np.uint8), labels


TRAIN = np.array([0] * 20 + [1] * 5 + [2] * 2)  # majority 20


@pytest.mark.parametrize(
    ("ratio", "expected"),
    [("all", [50, 50, 50]), ("fill", [0, 15, 18]), ("x2", [40, 10, 4]), ("x0.5", [10, 2, 1]), ("+7", [7, 7, 7])],
)
def test_ratio_modes_add_the_claimed_counts(ratio, expected):
    arm = expand_arms([f"cgan@{ratio}"], ["cgan"], [])[0]
    syn = {"cgan": _synthetic({0: 50, 1: 50, 2: 50})}
    ts = build_train_set(arm, TRAIN, np.arange(len(TRAIN)), CLASSES, seed=0, synthetic=syn)
    assert ts.real_counts().tolist() == [20, 5, 2]
    assert ts.synth_counts().tolist() == expected
    assert len(ts) == 27 + sum(expected)
    assert ts.labels.tolist()[:27] == TRAIN.tolist()


def test_synthetic_images_only_for_classes_in_the_set_or_asked_for():
    arm = expand_arms(["cgan"], ["cgan"], ["fill"])[0]
    syn = {"cgan": _synthetic({1: 30, 2: 30})}  # a set of the rare classes only
    ts = build_train_set(arm, TRAIN, np.arange(27), CLASSES, 0, syn)
    assert ts.synth_counts().tolist() == [0, 15, 18]
    ts = build_train_set(arm, TRAIN, np.arange(27), CLASSES, 0, syn, synthetic_classes={2})
    assert ts.synth_counts().tolist() == [0, 0, 18]


def test_default_ratio_adds_the_whole_set_for_every_seed():
    arm = expand_arms(["cgan"], ["cgan"], [])[0]
    assert arm.name == "cgan" and arm.ratio.text == "all" and "every image" in arm.describe()
    syn = {"cgan": _synthetic({2: 5000})}  # `cxraug synth --class C -n 5000`: far beyond any fill
    a = build_train_set(arm, TRAIN, np.arange(27), CLASSES, 0, syn)
    b = build_train_set(arm, TRAIN, np.arange(27), CLASSES, 1, syn)
    assert a.synth_counts().tolist() == [0, 0, 5000] and (a.synth_images == b.synth_images).all()


def test_seed_picks_synthetic_images_repeatably():
    arm = expand_arms(["cgan@+5"], ["cgan"], [])[0]
    syn = {"cgan": _synthetic({2: 40})}
    a = build_train_set(arm, TRAIN, np.arange(27), CLASSES, 0, syn).synth_images
    b = build_train_set(arm, TRAIN, np.arange(27), CLASSES, 0, syn).synth_images
    c = build_train_set(arm, TRAIN, np.arange(27), CLASSES, 1, syn).synth_images
    assert (a == b).all() and not (a == c).all()


def test_too_few_synthetic_images_is_refused():
    arm = expand_arms(["cgan@fill"], ["cgan"], [])[0]
    with pytest.raises(UserError, match=r"18 synthetic images of C are needed.*has 10"):
        build_train_set(arm, TRAIN, np.arange(27), CLASSES, 0, {"cgan": _synthetic({2: 10})})


def test_synthetic_only_uses_the_set_and_needs_every_class():
    arm = expand_arms(["cgan-only"], ["cgan"], [])[0]
    ts = build_train_set(arm, TRAIN, np.arange(27), CLASSES, 0, {"cgan": _synthetic({0: 4, 1: 3, 2: 2})})
    assert ts.real_counts().sum() == 0 and ts.synth_counts().tolist() == [4, 3, 2]
    with pytest.raises(UserError, match="has none of A"):
        build_train_set(arm, TRAIN, np.arange(27), CLASSES, 0, {"cgan": _synthetic({1: 3, 2: 2})})


def test_baseline_arms_sampling_weights_and_augmentation():
    idx = np.arange(len(TRAIN))
    kinds = {a.name: build_train_set(a, TRAIN, idx, CLASSES, 0) for a in expand_arms(None, [], ["fill"])}
    assert list(kinds) == ["real", "reweight", "oversample", "classic", "logit-adjust"]
    for ts in kinds.values():
        assert ts.real_counts().tolist() == [20, 5, 2] and ts.synth_counts().sum() == 0
    assert kinds["oversample"].sampling == "balanced" and kinds["real"].sampling == "shuffle"
    assert kinds["classic"].augment and not kinds["real"].augment
    w = kinds["reweight"].class_weights
    assert np.allclose(w * np.array([20, 5, 2]), 27 / 3)  # w_c * n_c equal for all classes
    assert np.isclose(w[TRAIN].mean(), 1.0)
    assert kinds["real"].class_weights is None
    # Logit adjustment (Menon et al. 2021, tau = 1): log of the training prior, in training only.
    assert np.allclose(kinds["logit-adjust"].logit_bias, np.log(np.array([20, 5, 2]) / 27))
    assert kinds["real"].logit_bias is None
    assert inverse_frequency_weights(np.array([0, 0, 2]), 3)[1] == 0  # absent class: weight 0


def test_oversample_draws_classes_equally_and_changes_per_epoch():
    labels = np.array([0] * 900 + [1] * 90 + [2] * 10)
    s = EpochSampler(labels, 3, "balanced", seed=3)
    draws = list(s)
    assert len(draws) == len(labels)
    freq = np.bincount(labels[draws], minlength=3) / len(draws)
    assert np.allclose(freq, 1 / 3, atol=0.05)
    assert list(EpochSampler(labels, 3, "balanced", seed=3)) == draws  # same seed, same epoch
    s.set_epoch(1)
    assert list(s) != draws
    shuffle = list(EpochSampler(labels, 3, "shuffle", seed=3))
    assert sorted(shuffle) == list(range(len(labels)))


def test_expand_arms_names_and_errors():
    arms = expand_arms(None, ["cgan", "diffusion"], ["fill", "x2"])
    assert [a.name for a in arms] == [
        "real", "reweight", "oversample", "classic", "logit-adjust", "cgan@fill", "cgan@x2", "diffusion@fill",
        "diffusion@x2", "cgan@fill+classic", "cgan@x2+classic", "diffusion@fill+classic", "diffusion@x2+classic",
    ]  # fmt: skip
    assert all(a.augment == a.name.endswith("+classic") for a in arms)
    assert [a.name for a in expand_arms(["cgan+classic"], ["cgan"], [])] == ["cgan+classic"]
    with pytest.raises(UserError, match="controls are added"):
        expand_arms(["real", "copy"], ["cgan"], [])
    one = expand_arms(["real", "cgan", "cgan"], ["cgan"], ["+100"])
    assert [a.name for a in one] == ["real", "cgan"] and one[1].ratio == Ratio("plus", 100)
    assert expand_arms(["cgan-only"], ["cgan"], [])[0] == Arm("cgan-only", "synthetic-only", "cgan")
    with pytest.raises(UserError, match=r"unknown arm 'gan'.*known: real"):
        expand_arms(["gan"], ["cgan"], [])
    with pytest.raises(UserError, match="need --synthetic"):
        expand_arms(["cgan"], [], [])
    assert parse_ratio("3x") == Ratio("times", 3.0) and parse_ratio("X1.5").text == "x1.5"
    for bad in ("half", "+0", "x0", "-5", "+1.5"):
        with pytest.raises(UserError, match="--ratio"):
            parse_ratio(bad)


def test_classic_augmentation_is_per_image_repeatable_and_never_flips():
    x = torch.full((6, 1, 32, 32), -1.0)
    x[:, :, 8:24, 2:10] = 1.0  # a bright block on the left
    cfg = AugmentConfig()
    a = augment_batch(x, cfg, torch.Generator().manual_seed(0))
    b = augment_batch(x, cfg, torch.Generator().manual_seed(0))
    assert a.shape == x.shape and a.min() >= -1 and a.max() <= 1
    assert torch.equal(a, b)
    assert not torch.allclose(a[0], a[1])  # each image gets its own parameters
    left, right = a[..., :16].mean(dim=(1, 2, 3)), a[..., 16:].mean(dim=(1, 2, 3))
    assert (left > right).all()  # the block stays on the left: no mirror image
    zero = AugmentConfig(degrees=0, translate=0, scale=0, brightness=0, contrast=0)
    assert torch.allclose(augment_batch(x, zero, torch.Generator()), x, atol=1e-5)


def test_controls_match_counts_share_groups_and_name_apart():
    arms = expand_arms(None, ["cgan", "diffusion"], ["fill", "x2"])
    quotas = {a.name: ({2: 18} if "fill" in a.name else {2: 4}) for a in arms if a.kind == "synthetic"}
    arms = [replace(a, quota=tuple(sorted(quotas[a.name].items()))) if a.name in quotas else a for a in arms]
    controls = [a for a in add_controls(arms, quotas) if a.is_control]
    # Two distinct quotas (fill and x2), each shared by both generators and their +classic arms.
    assert [c.name for c in controls] == ["copy@fill", "noise@fill", "copy@x2", "noise@x2"]
    assert controls[0].quota == ((2, 18),) and set(controls[0].controls_for) == {
        "cgan@fill", "diffusion@fill", "cgan@fill+classic", "diffusion@fill+classic"}  # fmt: skip
    one = expand_arms(None, ["cgan"], ["all"])
    one = [replace(a, quota=((2, 7),)) if a.kind == "synthetic" else a for a in one]
    assert [c.name for c in add_controls(one, {a.name: {2: 7} for a in one if a.kind == "synthetic"}) if c.is_control] == [
        "copy", "noise"]  # fmt: skip


def test_copy_and_noise_controls_have_the_counts_determinism_and_leakage_guard():
    rng = np.random.default_rng(0)
    real_train = rng.integers(0, 256, size=(len(TRAIN), 8, 8), dtype=np.uint8)
    keep = np.flatnonzero(TRAIN != 2)[:-3]  # a controlled imbalance: some rows are not the arm's
    keep = np.sort(np.concatenate([keep, np.flatnonzero(TRAIN == 2)[:1]]))
    for kind in ("copy", "noise"):
        arm = Arm(kind, kind, quota=((2, 9), (1, 3)), controls_for=("cgan",))
        a = build_train_set(arm, TRAIN, keep, CLASSES, 0, real_train=real_train)
        b = build_train_set(arm, TRAIN, keep, CLASSES, 0, real_train=real_train)
        c = build_train_set(arm, TRAIN, keep, CLASSES, 1, real_train=real_train)
        assert a.synth_counts().tolist() == [0, 3, 9] and a.real_counts().tolist() == np.bincount(TRAIN[keep]).tolist()
        assert (a.synth_images == b.synth_images).all() and not (a.synth_images == c.synth_images).all()
        images, _, rows = control_images(kind, {2: 9, 1: 3}, real_train, TRAIN, keep, 0)
        assert np.isin(rows, keep).all()  # only the arm's own training rows
        if kind == "copy":  # the one kept image of class 2, repeated: never a dropped one
            assert (rows[TRAIN[rows] != 1] == np.flatnonzero(TRAIN == 2)[0]).all()
            assert all((img == real_train[r]).all() for img, r in zip(images, rows, strict=True))
        else:  # the source's exact histogram, but not its picture
            assert all(
                sorted(img.ravel()) == sorted(real_train[r].ravel()) for img, r in zip(images, rows, strict=True)
            )
            assert not any((img == real_train[r]).all() for img, r in zip(images, rows, strict=True))
    with pytest.raises(RuntimeError, match="outside the arm's training rows"):
        check_training_rows(np.array([0, 26]), np.arange(10))


def test_phase_randomised_images_keep_the_spectrum_not_the_structure():
    x = np.zeros((1, 32, 32), dtype=np.uint8)
    x[0, 8:24, 8:24] = 200  # a bright square
    y = phase_randomise(x, np.random.default_rng(0))
    assert sorted(y.ravel()) == sorted(x.ravel())
    # The square is gone: the bright pixels are no longer one connected block in the middle.
    assert y[0, 8:24, 8:24].mean() < 0.8 * x[0, 8:24, 8:24].mean()


def test_reserved_names_are_refused_for_synthetic_sets():
    for bad in ("copy", "noise", "copy-cgan", "logit-adjust", "real", "a+classic"):
        with pytest.raises(UserError, match="not usable"):
            check_synthetic_name(bad)
    check_synthetic_name("cgan")
