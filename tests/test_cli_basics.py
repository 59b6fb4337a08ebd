"""The `cxraug` command line: version, help, usage errors, `info`, and a cheap import."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from gen_helpers import phantom_prepare_argv
from typer.testing import CliRunner

from cxraug import __version__
from cxraug.classes import NIH_CLASSES
from cxraug.cli import app, main

runner = CliRunner()


def test_import_does_not_load_torch() -> None:
    code = (
        "import sys, cxraug, cxraug.cli, cxraug.data.prepare, cxraug.data.prepared\n"
        "heavy = [m for m in ('torch', 'torchvision', 'diffusers', 'accelerate') if m in sys.modules]\n"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"importing cxraug loaded {out.stdout.strip()}"


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout.strip() == f"cxraug {__version__}"


def test_version_through_main(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0 and capsys.readouterr().out.strip() == f"cxraug {__version__}"


def test_help_lists_the_commands() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "prepare" in result.stdout and "info" in result.stdout
    result = runner.invoke(app, ["prepare", "--help"])
    assert result.exit_code == 0
    for option in ("--source", "--data-dir", "--size", "--classes", "--views", "--val-fraction", "--strict", "--npz"):
        assert option in result.stdout, option


def test_bare_command_shows_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main([])
    assert exc.value.code == 0 and "prepare" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "expect"),
    [
        (["prepare", "--out", "x", "--size", "abc"], "Invalid value for '--size'"),
        (["prepare", "--size", "64"], "Missing option '--out'"),
        (["prepare", "--out", "x", "--bogus"], "No such option"),
        (["frobnicate"], "No such command 'frobnicate'"),
    ],
)
def test_usage_errors_are_one_line_with_exit_2(
    argv: list[str], expect: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    captured = capsys.readouterr()
    assert exc.value.code == 2
    err = captured.err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: ") and expect in err, err
    assert "Traceback" not in captured.err + captured.out
    assert not Path("x").exists()


def test_info_json(phantom32: Path) -> None:
    result = runner.invoke(app, ["info", str(phantom32), "--json"])
    assert result.exit_code == 0, result.output
    obj = json.loads(result.stdout)
    assert obj["source"] == "phantom" and obj["size"] == 32 and obj["classes"] == list(NIH_CLASSES)
    assert set(obj["counts"]) == {"train", "val", "test"}
    assert sum(obj["images"].values()) == sum(sum(c.values()) for c in obj["counts"].values()) == 400
    assert obj["real_data"] is False and "NOT REAL DATA" in obj["note"]


def test_info_table_says_not_real_data(phantom32: Path) -> None:
    result = runner.invoke(app, ["info", str(phantom32)])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "NOT REAL DATA" in out and "imbalance" in out and "Hernia" in out
    assert "400" in out  # the total row


def test_info_on_a_folder_that_is_not_a_dataset(tmp_path: Path) -> None:
    result = runner.invoke(app, ["info", str(tmp_path)])
    assert result.exit_code == 2 and "no dataset.json" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_prepare_prints_the_table(tmp_path: Path) -> None:
    out = tmp_path / "ph"
    args = phantom_prepare_argv(out)
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    text = result.stdout
    for word in ("No Finding", "Hernia", "share", "imbalance", "patients", "NOT REAL DATA", f"wrote {out}"):
        assert word in text, word
    assert (out / "dataset.json").is_file()
