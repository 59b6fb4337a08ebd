"""Shared fixtures. Real data lives in ../shared/data beside the repository (absent on a
user's machine: tests that need it skip with the reason)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# As the CLI does (cxraug/cli.py), before any test imports torch: idle OpenMP threads sleep.
# Commands invoked in-process (CliRunner) otherwise spin, and a tiny benchmark ran 10x slower.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

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


NIH_HEADER = (
    "Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position,"
    "OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y]"
)


def write_mini_nih(root: Path, n_patients: int = 8, per_patient: int = 3, size: int = 48) -> dict:
    """A small NIH-layout download built from phantom renders (no real data needed).

    Patients 1..n; images ``{pid:08d}_{k:03d}.png`` in images_001/images; the last patient is
    in test_list.txt. Each patient's third image is multi-label, one listed image is absent
    from disk, and the PNGs come in L, RGB and RGBA. Returns what a correct prepare finds.
    """
    from PIL import Image

    from cxraug.data.sources.phantom import render

    labels = ["No Finding", "Effusion", "Hernia", "Mass"]
    img_dir = root / "images_001" / "images"
    img_dir.mkdir(parents=True)
    rows, train_val, test, single = [], [], [], {}
    for pid in range(1, n_patients + 1):
        for k in range(per_patient):
            name = f"{pid:08d}_{k:03d}.png"
            label = labels[pid % len(labels)] if k < 2 else "Effusion|Mass"
            view = "PA" if k == 0 else "AP"
            rows.append(f"{name},{label},{k},{pid},{40 + pid},{'MF'[pid % 2]},{view},2500,2048,0.143,0.143")
            (test if pid == n_patients else train_val).append(name)
            if pid == 2 and k == 1:
                continue  # listed in the CSV, not on disk
            grey = render(label.split("|")[0], size, seed=pid * 10 + k)
            mode = ("L", "RGB", "RGBA")[(pid + k) % 3]
            img = Image.fromarray(grey, "L").convert(mode)
            img.save(img_dir / name)
            if "|" not in label:
                single[name] = label
    (root / "Data_Entry_2017_v2020.csv").write_text("\n".join([NIH_HEADER, *rows]) + "\n")
    (root / "train_val_list.txt").write_text("\n".join(train_val) + "\n")
    (root / "test_list.txt").write_text("\n".join(test) + "\n")
    return {"single": single, "missing": {labels[2 % len(labels)]: 1}, "test_patient": str(n_patients)}


@pytest.fixture
def mini_nih(tmp_path: Path) -> tuple[Path, dict]:
    """A fresh small NIH-layout folder (phantom pixels, NOT real data) per test."""
    root = tmp_path / "nih-mini"
    return root, write_mini_nih(root)
