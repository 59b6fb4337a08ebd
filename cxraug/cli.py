"""The ``cxraug`` command line. Each command lives in ``cxraug/commands/``."""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import sys
from typing import Annotated, Optional

import typer

from cxraug import __version__
from cxraug.commands import (
    benchmark_cmd,
    compare_cmd,
    prepare_cmd,
    report_cmd,
    score_cmd,
    study_cmd,
    synth_cmd,
    train_cmd,
)
from cxraug.malloc import tune_malloc

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
    """cxraug: prepare -> train-gen -> synth -> score / compare -> benchmark -> report."""


app.command()(prepare_cmd.prepare)
app.command()(prepare_cmd.info)
app.command()(train_cmd.plugins)
app.command("train-gen")(train_cmd.train_gen)
app.command()(synth_cmd.synth)
app.command()(benchmark_cmd.benchmark)
app.command()(score_cmd.score)
app.command()(compare_cmd.compare)
app.command()(report_cmd.report)
app.command()(study_cmd.study)


def _cli_error_types() -> tuple[type[BaseException], type[BaseException]]:
    """(usage-error base, abort) of the click that parses our arguments: Typer >= 0.26 vendors
    click (its errors derive from typer.TyperException), older Typer uses the click package."""
    if hasattr(typer, "TyperException"):
        return typer.TyperException, typer.Abort
    import click

    return click.exceptions.ClickException, click.exceptions.Abort


class Terminated(BaseException):
    """SIGTERM, raised in the main process so that staging folders are removed on the way out."""


def _on_sigterm(signum: int, frame: object, *, main_pid: int) -> None:
    if os.getpid() != main_pid:  # a forked worker (prepare's pool): die as before, silently
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)
        return
    raise Terminated()


def _release_process_group() -> None:
    """Tear down a multi-process run's process group before the interpreter exits: left to
    exit-time destructors, gloo's threads can still be joinable and the process aborts
    ("terminate called without an active exception", SIGABRT) after its clear error line."""
    if "torch.distributed" not in sys.modules:  # never load torch just to find nothing to do
        return
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        with contextlib.suppress(Exception):  # the peer may already be gone; exiting is all that is left
            dist.destroy_process_group()


STOPPED = "nothing half-written was kept; run the same command again to start over (train-gen: --resume RUN_DIR)"


def main(argv: list[str] | None = None) -> None:
    """Console entry point: usage errors become one line and exit code 2."""
    # A path or name the terminal's encoding cannot show is escaped, not a UnicodeEncodeError.
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    signal.signal(signal.SIGTERM, functools.partial(_on_sigterm, main_pid=os.getpid()))
    # Idle OpenMP threads sleep instead of spinning: on a machine shared with other jobs,
    # spinning made 2-thread torch up to ~40x slower here. Must be set before torch loads.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    tune_malloc()  # fewer page faults in CPU tensor work (cxraug/malloc.py)
    usage_error, abort = _cli_error_types()
    try:
        rv = app(args=argv, prog_name="cxraug", standalone_mode=False)
    except usage_error as e:
        if type(e).__name__ == "NoArgsIsHelpError":  # bare `cxraug`: its message is the help
            print(e.format_message())
            sys.exit(0)
        ctx = getattr(e, "ctx", None)
        hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
        print(f"error: {e.format_message()}{hint}", file=sys.stderr)
        sys.exit(2)
    except abort:
        print("aborted", file=sys.stderr)
        sys.exit(130)
    except Terminated:
        print(f"terminated (SIGTERM); {STOPPED}", file=sys.stderr)
        sys.exit(143)
    finally:
        _release_process_group()
    if rv == 130:  # Typer turns Ctrl-C (KeyboardInterrupt) into exit code 130, and no command returns it
        print(f"interrupted (Ctrl-C); {STOPPED}", file=sys.stderr)
    sys.exit(rv if isinstance(rv, int) else 0)
