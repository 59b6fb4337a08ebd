"""A synthetic set is used only if its generator never saw the benchmark's validation or test
patients, and if its classes and size are the dataset's."""

from __future__ import annotations

import json

import pytest
from test_benchmark_support import make_synthetic_set, write_derived_dataset

from cxraug.benchmark.provenance import check_synthetic, controlled_caveats
from cxraug.data.prepare import PrepareConfig, prepare
from cxraug.data.prepared import open_prepared
from cxraug.errors import UserError
from cxraug.synthset import open_synthetic


@pytest.fixture(scope="module")
def data(phantom32):
    return open_prepared(phantom32)


def _check(tmp_path, phantom32, **kw):
    root = make_synthetic_set(tmp_path / "syn", phantom32, {"Hernia": 3}, **kw)
    return check_synthetic("cgan", open_synthetic(root), open_prepared(phantom32))


def test_generator_trained_on_this_training_split_is_accepted(tmp_path, phantom32):
    assert _check(tmp_path, phantom32) == []


@pytest.mark.parametrize("splits", [["train", "val"], ["train", "test"], ["val"]])
def test_generator_that_saw_val_or_test_patients_is_refused(tmp_path, phantom32, splits):
    with pytest.raises(UserError, match=r"saw \d+ validation/test patients"):
        _check(tmp_path, phantom32, splits=splits)


def test_unknown_splits_are_refused(tmp_path, phantom32):
    with pytest.raises(UserError, match="does not say which splits"):
        _check(tmp_path, phantom32, splits=["everything"])


def test_other_dataset_with_overlapping_patients_is_refused(tmp_path, phantom32):
    # The same phantom patients split with another seed: some of our val/test patients are its train.
    other = tmp_path / "other"
    prepare(PrepareConfig(source="phantom", out=other, size=32, n=400, workers=1, seed=1))
    other_data = open_prepared(other)
    from cxraug.data.prepared import fingerprint

    with pytest.raises(UserError, match="validation/test patients"):
        _check(tmp_path, phantom32, data_path=str(other), data_fingerprint=fingerprint(other_data))


def test_other_dataset_with_disjoint_patients_is_accepted(tmp_path, phantom32):
    # E.g. a reduced copy holding only our training patients (a controlled-imbalance set).
    derived = write_derived_dataset(tmp_path / "derived", phantom32, {"train": "train"})
    from cxraug.data.prepared import fingerprint

    notes = _check(tmp_path, phantom32, data_path=str(derived), data_fingerprint=fingerprint(open_prepared(derived)))
    assert "patient-disjoint" in notes[0]


def test_other_dataset_that_cannot_be_found_or_changed_is_refused(tmp_path, phantom32):
    with pytest.raises(UserError, match="not found"):
        _check(tmp_path, phantom32, data_path=str(tmp_path / "gone"), data_fingerprint="0" * 64)
    derived = write_derived_dataset(tmp_path / "derived", phantom32, {"train": "train"})
    with pytest.raises(UserError, match="changed since"):
        make_synthetic_set(
            tmp_path / "syn2", phantom32, {"Hernia": 2}, data_path=str(derived), data_fingerprint="f" * 64
        )
        check_synthetic("cgan", open_synthetic(tmp_path / "syn2"), open_prepared(phantom32))


def test_other_classes_or_size_are_refused(tmp_path, phantom32, data):
    with pytest.raises(UserError, match="has classes"):
        _check(tmp_path, phantom32, classes=list(reversed(data.classes)))
    with pytest.raises(UserError, match=r"is 64px but .* is 32px"):
        make_synthetic_set(tmp_path / "big", phantom32, {"Hernia": 2}, size=64)
        check_synthetic("cgan", open_synthetic(tmp_path / "big"), data)


def test_incomplete_set_is_refused(tmp_path, phantom32):
    root = make_synthetic_set(tmp_path / "syn", phantom32, {"Hernia": 2})
    prov = json.loads((root / "provenance.json").read_text())
    (root / "provenance.json").write_text(json.dumps({**prov, "complete": False}))
    with pytest.raises(UserError, match="incomplete"):
        open_synthetic(root)


def test_controlled_imbalance_caveat_when_generator_saw_more(tmp_path, phantom32, data):
    syn = open_synthetic(make_synthetic_set(tmp_path / "syn", phantom32, {"No Finding": 2}))
    notes = controlled_caveats("cgan", syn, data, {"No Finding": 20})
    assert "trained on 140 images of No Finding, the classifier keeps 20" in notes[0]
    assert controlled_caveats("cgan", syn, data, {"No Finding": 140}) == []


def test_reduced_training_set_for_a_fair_generator(tmp_path, phantom32, data):
    from cxraug.benchmark.config import build_config
    from cxraug.benchmark.planning import make_plan
    from cxraug.benchmark.reduced import export_reduced
    from cxraug.data.prepared import fingerprint

    cfg = build_config(None, {"controlled_imbalance": {"No Finding": 20}})
    reduced = open_prepared(export_reduced(phantom32, cfg, tmp_path / "reduced"))
    plan = make_plan(phantom32, cfg)
    assert reduced.counts("train")["No Finding"] == 20
    assert (reduced.images("train") == data.images("train")[plan.real_index]).all()
    assert (reduced.labels("train") == data.labels("train")[plan.real_index]).all()
    for split in ("val", "test"):
        assert (reduced.images(split) == data.images(split)).all() and reduced.patients(split) == data.patients(split)
    assert reduced.patients("train") <= data.patients("train")
    # A generator trained on it passes the leakage check, and no caveat is due.
    syn = open_synthetic(
        make_synthetic_set(
            tmp_path / "syn", tmp_path / "reduced", {"No Finding": 2}, data_fingerprint=fingerprint(reduced)
        )
    )
    assert check_synthetic("cgan", syn, data)
    assert controlled_caveats("cgan", syn, data, {"No Finding": 20}) == []
    with pytest.raises(UserError, match="already exists"):
        export_reduced(phantom32, cfg, tmp_path / "reduced")


def test_a_set_replaced_after_the_plan_is_refused_not_half_used(phantom32, tmp_path):
    """Each synthetic set is read once and checked against the fingerprint its runs are keyed
    by: a set replaced between the plan and the reading stops the run with one line."""
    import shutil

    from cxraug.benchmark.config import build_config
    from cxraug.benchmark.planning import make_plan
    from cxraug.benchmark.runkey import run_key
    from cxraug.benchmark.runner import _load_sets

    first = make_synthetic_set(tmp_path / "a", phantom32, {"Hernia": 6})
    other = make_synthetic_set(tmp_path / "b", phantom32, {"Hernia": 6}, seed=1)
    cfg = build_config(None, {"arms": ["cgan"], "synthetic": {"cgan": first}, "model": "tiny", "seeds": [0]})
    plan = make_plan(phantom32, cfg)
    keys = {(a.name, 0): run_key(plan, a, 0, 1) for a in plan.arms}
    pending = [(a, 0) for a in plan.arms if a.synthetic]
    assert set(_load_sets(plan, pending, keys)) == {("cgan", 0)}  # unchanged: read once, accepted
    shutil.rmtree(first)
    shutil.copytree(other, first)  # `synth --overwrite` between the plan and the reading
    with pytest.raises(UserError, match="changed while the benchmark was starting"):
        _load_sets(plan, pending, keys)
