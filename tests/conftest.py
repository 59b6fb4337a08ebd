"""Shared fixtures. Real data lives in ../shared/data beside the repository (absent on a
user's machine: tests that need it skip with the reason)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("CXRAUG_SHARED_DATA", ROOT.parent / "shared" / "data"))
NIH_DIR = SHARED_DATA / "nih-cxr14"
MEDMNIST_DIR = SHARED_DATA / "medmnist"


@pytest.fixture(scope="session", autouse=True)
def _few_threads() -> None:
    # Tests use tiny models: one thread avoids oversubscription when helpers run in parallel.
    import torch

    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def nih_dir() -> Path:
    if not (NIH_DIR / "Data_Entry_2017_v2020.csv").is_file():
        pytest.skip(f"real NIH data not found at {NIH_DIR} (set CXRAUG_SHARED_DATA)")
    return NIH_DIR


@pytest.fixture(scope="session")
def medmnist_dir() -> Path:
    if not (MEDMNIST_DIR / "pneumoniamnist_partial.npz").is_file():
        pytest.skip(f"real MedMNIST data not found at {MEDMNIST_DIR} (set CXRAUG_SHARED_DATA)")
    return MEDMNIST_DIR


@pytest.fixture(scope="session")
def phantom32(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small prepared phantom dataset at 32 px (NOT real data), shared read-only by tests."""
    from cxraug.data.prepare import PrepareConfig, prepare

    out = tmp_path_factory.mktemp("data") / "phantom32"
    prepare(PrepareConfig(source="phantom", out=out, size=32, n=400, workers=1, seed=0))
    return out


@pytest.fixture(scope="session")
def nih64(tmp_path_factory: pytest.TempPathFactory, nih_dir: Path) -> Path:
    """The real partial NIH download prepared at 64 px (788 single-label images)."""
    from cxraug.data.prepare import PrepareConfig, prepare

    out = tmp_path_factory.mktemp("data") / "nih64"
    prepare(PrepareConfig(source="nih", data_dir=nih_dir, out=out, size=64, workers=2))
    return out
