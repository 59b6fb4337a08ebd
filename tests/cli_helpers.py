"""Calling the CLI in-process from a test: exit code, stdout and stderr."""

from __future__ import annotations

import pytest

from cxraug.cli import main


def run_main(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """``cxraug ARGV`` in this process; its exit code and what it printed on each stream."""
    with pytest.raises(SystemExit) as e:
        main(argv)
    captured = capsys.readouterr()
    return e.value.code, captured.out, captured.err
