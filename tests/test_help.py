"""Every command's help reads alike: one name per idea, defaults shown one way, required options
marked, an example, and nothing cut or overflowing at 80 columns."""

from __future__ import annotations

import re

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from cxraug.cli import EXAMPLES, app

runner = CliRunner()
COMMANDS = sorted(get_command(app).commands)  # type: ignore[attr-defined]
# Options a command needs in one of its modes: the help says when ("Required unless ...").
REQUIRED_IN_A_MODE = {
    "train-gen": ("--plugin", "--data"),
    "benchmark": ("--data",),
    "report": ("--benchmark", "--out"),
    "study": ("--data", "--rare", "--sizes", "--out"),
}


def _help(name: str, columns: int = 80) -> str:
    result = runner.invoke(app, [name, "--help"], env={"COLUMNS": str(columns), "TERMINAL_WIDTH": str(columns)})
    assert result.exit_code == 0, result.output
    return result.stdout


def test_every_command_is_walked() -> None:
    assert set(COMMANDS) == set(EXAMPLES) and {"prepare", "score", "benchmark", "train-gen"} <= set(COMMANDS)


@pytest.mark.parametrize("name", COMMANDS)
def test_help_fits_80_columns_and_cuts_nothing(name: str) -> None:
    text = _help(name)
    for line in text.splitlines():
        assert len(line) <= 80, line
        assert "…" not in line, line
    # Every option's long name appears whole.
    for param in get_command(app).commands[name].params:  # type: ignore[attr-defined]
        for opt in param.opts:
            if opt.startswith("--"):
                assert re.search(re.escape(opt) + r"\b", text), opt


def test_the_command_list_cuts_nothing() -> None:
    result = runner.invoke(app, ["--help"], env={"COLUMNS": "80", "TERMINAL_WIDTH": "80"})
    assert result.exit_code == 0
    listing = result.stdout.split("Commands:")[1]  # (the usage line's "[ARGS]..." is click's)
    assert "..." not in listing and "…" not in result.stdout
    assert all(len(line) <= 80 for line in result.stdout.splitlines())
    for name in COMMANDS:
        assert re.search(rf"^  {re.escape(name)} ", result.stdout, re.MULTILINE), name


@pytest.mark.parametrize("name", COMMANDS)
def test_one_example_per_command(name: str) -> None:
    text = _help(name)
    assert text.count("Example:") == 1 and EXAMPLES[name] in text
    assert EXAMPLES[name].startswith(f"cxraug {name}")


@pytest.mark.parametrize("name", COMMANDS)
def test_defaults_shown_one_way_and_required_marked(name: str) -> None:
    import click

    command = get_command(app).commands[name]  # type: ignore[attr-defined]
    ctx = click.Context(command, info_name=name)
    for param in command.params:
        if param.param_type_name != "option" or param.name == "help":
            continue
        record = param.get_help_record(ctx)
        assert record is not None, param.opts
        help_text = " ".join(record[1].split())
        words = help_text.split("[default: ")[0]
        # No default said in words: "(default 2000)", "(default: all cores)", "val (default)".
        assert not re.search(r"\bdefault\b", words, re.IGNORECASE), (param.opts, help_text)
        if param.required:
            assert "[required]" in help_text, param.opts
        elif name in REQUIRED_IN_A_MODE and param.opts[0] in REQUIRED_IN_A_MODE[name]:
            assert "Required unless" in help_text or "Required, except" in help_text, param.opts
        elif param.default is None and isinstance(param.show_default, str):
            assert f"[default: ({param.show_default})]" in help_text, param.opts  # computed: said how
        elif param.default in (None, "") or (getattr(param, "is_flag", False) and param.default is False):
            assert param.opts[0] in NO_VALUE.get(name, ()) + NO_VALUE["*"], (name, param.opts, help_text)
        else:
            assert "[default: " in help_text, (param.opts, help_text)


# Options whose absence means "none" or "off", with nothing to compute: no default to show.
NO_VALUE = {
    "*": ("--overwrite", "--json", "--config", "--set", "--out"),
    "prepare": ("--data-dir", "--views", "--strict", "--npz", "--labels"),
    "train-gen": ("--time-limit", "--seeds", "--resume", "--dry-run", "--plan"),
    "synth": ("--allow-unseen",),
    "score": ("--run", "--images", "--allow-different-data", "--plan"),
    "compare": ("--benchmark", "--allow-different-data", "--plan"),
    "benchmark": ("--synthetic", "--controlled-imbalance", "--export-reduced", "--report-only", "--plan", "--force"),
    "report": ("--compare", "--note", "--run"),
    "study": ("--time-limit", "--gen-steps", "--set-gen", "--set-sample", "--shard", "--force", "--plan"),
}


def test_class_and_classes_are_one_option() -> None:
    for name in ("prepare", "synth", "score", "compare"):
        command = get_command(app).commands[name]  # type: ignore[attr-defined]
        opts = [p.opts for p in command.params if "--classes" in p.opts or "--class" in p.opts]
        assert opts == [["--classes", "--class"]], (name, opts)
        assert "--class is the same option" in " ".join(_help(name).split())


def test_score_split_train_is_labelled() -> None:
    text = " ".join(_help("score").split())
    assert "train (against the training images: also measures memorization)" in text


def test_every_long_command_has_plan() -> None:
    for name in ("train-gen", "score", "compare", "benchmark", "study"):
        command = get_command(app).commands[name]  # type: ignore[attr-defined]
        assert ["--plan"] in [p.opts for p in command.params], name
    assert "--force" in " ".join(_help("benchmark").split())
