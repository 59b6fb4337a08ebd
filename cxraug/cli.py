"""The ``cxraug`` command line. Each command lives in ``cxraug/commands/``."""

from __future__ import annotations

import sys
from typing import Annotated, Optional

import typer

from cxraug import __version__
from cxraug.commands import prepare_cmd

app = typer.Typer(
    name="cxraug",
    help="Class-conditional generative augmentation for chest X-ray classifiers.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        print(f"cxraug {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        Optional[bool], typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = None,
) -> None:
    """cxraug: prepare -> train-gen -> synth -> score -> benchmark."""


app.command()(prepare_cmd.prepare)
app.command()(prepare_cmd.info)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: usage errors become one line and exit code 2."""
    import click

    try:
        rv = app(args=argv, prog_name="cxraug", standalone_mode=False)
    except click.exceptions.UsageError as e:
        hint = f" (see `{e.ctx.command_path} --help`)" if e.ctx else ""
        print(f"error: {e.format_message()}{hint}", file=sys.stderr)
        sys.exit(2)
    except click.exceptions.Abort:
        print("aborted", file=sys.stderr)
        sys.exit(130)
    sys.exit(rv if isinstance(rv, int) else 0)
