"""benchmarks/gpu_check.py, the one-shot GPU check, as far as a CPU can run it: its argument
handling, its device audit (it must flag heavy calls on the wrong device), and its dry mode
(--device cpu --tiny) end to end."""

from __future__ import annotations

import json

import pytest
from bench_helpers import load_benchmark


@pytest.fixture(scope="module")
def gpu_check():
    return load_benchmark("gpu_check")


def test_without_cuda_it_says_how_to_dry_run(gpu_check, tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert gpu_check.main(["--work", str(tmp_path / "w")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--device cpu --tiny" in err[0]
    assert not (tmp_path / "w").exists()


def test_too_few_images_to_score_is_refused(gpu_check, tmp_path, capsys):
    assert gpu_check.main(["--device", "cpu", "--tiny", "--n", "3", "--work", str(tmp_path / "w")]) == 2
    assert "--n at least 6" in capsys.readouterr().err


def test_the_audit_flags_heavy_calls_on_another_device(gpu_check, monkeypatch):
    import torch

    def conv_on_cpu(argv):
        torch.nn.functional.conv2d(torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 3, 3))

    monkeypatch.setattr(gpu_check, "cli", conv_on_cpu)
    st = gpu_check.Stages("cpu")
    row = st.run("on cpu", ["x"], ["x"])
    assert row["heavy_calls"] == {"cpu": 1} and st.failures == []
    st.device = "cuda"  # as the GPU run expects: a silent CPU fallback must fail the check
    st.run("fallback", ["x"], ["x"])
    assert len(st.failures) == 1 and "expected all on cuda" in st.failures[0]


@pytest.mark.slow
def test_dry_mode_on_the_cpu(gpu_check, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CXRAUG_THREADS", "1")
    argv = ["--device", "cpu", "--tiny", "--no-score", "--cgan-steps", "1", "--diffusion-steps", "1", "--n", "6",
            "--epochs", "1", "--work", str(tmp_path)]  # fmt: skip
    assert gpu_check.main(argv) == 0, capsys.readouterr().err[-2000:]
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    assert report["failures"] == []
    stages = [r["stage"] for r in report["stages"]]
    assert stages == ["train cgan 32px", "sample cgan 32px", "train cgan+d_features 32px", "train diffusion 32px",
                      "sample diffusion 32px", "benchmark real x 2 seeds"]  # fmt: skip
    for row in report["stages"]:
        assert set(row["heavy_calls"]) == {"cpu"} and row["seconds"] > 0 and row["img_per_s"], row
    assert report["study_estimate"]["device_hours_32px"] > 0
    assert "all checks passed" in capsys.readouterr().out
