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
from cxraug.runtime import configure_process

app = typer.Typer(
    name="cxraug",
    help="Class-conditional generative augmentation for chest X-ray classifiers.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    # Click's own help layout: it wraps every option name and help text to the terminal, where
    # Rich's panels cut long option names with an ellipsis at 80 columns.
    rich_markup_mode=None,
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


# One example per command, shown under its help (\b keeps click from rewrapping the lines).
EXAMPLES = {
    "prepare": "cxraug prepare --source sample --out data/sample",
    "info": "cxraug info data/sample",
    "plugins": "cxraug plugins",
    "train-gen": "cxraug train-gen --plugin cgan --data data/sample --time-limit 3",
    "synth": 'cxraug synth --run runs/00001-cgan-sample --class "No Finding" -n 500',
    "score": "cxraug score --run runs/00001-cgan-sample --n 200",
    "compare": "cxraug compare runs/00001-cgan-sample runs/00002-diffusion-sample --n 200",
    "benchmark": "cxraug benchmark --data data/sample --synthetic cgan=SYNTH_DIR --seeds 3",
    "report": "cxraug report --benchmark runs/benchmark-sample --out study/index.html",
    "study": "cxraug study --config study.yaml --sizes 10,25,50 --out study",
}


def _example(name: str, extra: str = "") -> str:
    return f"Example:\n\n\b\n  {EXAMPLES[name]}" + (f"\n\n{extra}" if extra else "")


# The command list's one line each (click would cut each docstring's first sentence at 80 columns).
SHORT = {
    "prepare": "A chest X-ray download -> a prepared dataset.",
    "info": "Images per class and split of a prepared dataset.",
    "plugins": "The registered generator plugins.",
    "train-gen": "Train a class-conditional generator.",
    "synth": "Synthetic images of chosen classes, as PNGs.",
    "benchmark": "Does synthetic data help a classifier? Arms x seeds.",
    "score": "FID / KID and more per class, against real images.",
    "compare": "Generator runs side by side, with what each cost.",
    "report": "The study's front page, the answer first.",
    "study": "The whole question as a curve over rare-class sizes.",
}


def _command(name: str, fn: object, extra: str = "") -> None:
    app.command(name, short_help=SHORT[name], epilog=_example(name, extra))(fn)  # type: ignore[arg-type]


_command("prepare", prepare_cmd.prepare)
_command("info", prepare_cmd.info)
_command("plugins", train_cmd.plugins)
_command("train-gen", train_cmd.train_gen, train_cmd.EPILOG)
_command("synth", synth_cmd.synth)
_command("benchmark", benchmark_cmd.benchmark, benchmark_cmd.epilog())
_command("score", score_cmd.score)
_command("compare", compare_cmd.compare)
_command("report", report_cmd.report)
_command("study", study_cmd.study)


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
    configure_process()  # OpenMP threads that sleep, malloc thresholds: before torch loads (cxraug/runtime.py)
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
