"""The real chest X-ray sample that ships inside cxraug: a subset of PneumoniaMNIST (MedMNIST
v2, CC BY 4.0), so that a first run needs no download. Its licence and citation are beside
the file (cxraug/data/sample/) and in README.md; scripts/make_sample.py rebuilds it."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from cxraug.data.records import SourceScan
from cxraug.data.sources.medmnist import scan_medmnist
from cxraug.errors import UserError

SAMPLE_FILE = "pneumoniamnist_sample.npz"
SAMPLE_NOTE = (
    "cxraug's built-in sample: real pediatric chest X-rays from PneumoniaMNIST (MedMNIST v2, CC BY 4.0); "
    "cite Yang et al., Sci Data 2023 and Kermany et al., Cell 2018 (see cxraug/data/sample/README.md)"
)


def sample_path() -> Path:
    """Where the installed sample is; a clear error if the installation lacks it."""
    path = Path(str(files("cxraug.data").joinpath("sample", SAMPLE_FILE)))
    if not path.is_file():
        raise UserError(
            f"the built-in sample {path} is missing from this installation; reinstall cxraug "
            "(`pip install .` ships it as package data)"
        )
    return path


def scan_sample() -> SourceScan:
    scan = scan_medmnist(sample_path(), "pneumoniamnist", None)
    scan.name = "sample:pneumoniamnist"
    scan.notes.append(SAMPLE_NOTE)
    return scan
