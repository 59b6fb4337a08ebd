"""``cxraug report``: the study's front page from a benchmark folder (and a compare folder), or a
training run's own page (``--run``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Optional

import typer

from cxraug.commands.common import out_console, user_errors


def report(
    benchmark: Annotated[
        Optional[Path], typer.Option(help="A `cxraug benchmark` folder. Required unless --run.", show_default=False)
    ] = None,
    out: Annotated[
        Optional[Path],
        typer.Option(help="The HTML file to write, e.g. study/index.html. Required unless --run.", show_default=False),
    ] = None,
    compare: Annotated[
        Optional[Path], typer.Option(help="A `cxraug compare` folder of the generator runs behind the synthetic sets.")
    ] = None,
    note: Annotated[str, typer.Option(help="A line under the title, e.g. the budget the study ran on.")] = "",
    columns: Annotated[int, typer.Option(help="Images per row of the sample grids.", min=1, max=32)] = 10,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing page at --out.")] = False,
    run: Annotated[
        Optional[Path],
        typer.Option("--run", metavar="RUN", help="Rebuild a train-gen run's own page, RUN/run.html, alone."),
    ] = None,
) -> None:
    """One page that leads with the answer: did the synthetic images beat their controls and the best
    baseline (with intervals), each generator's samples beside real images, links to the other pages."""
    opts = ReportOptions(
        benchmark=benchmark, out=out, compare=compare, note=note, columns=columns, overwrite=overwrite, run=run
    )
    if opts.run is not None:
        _run_page(opts)
        return
    _report(opts)


@dataclass(frozen=True, kw_only=True)
class ReportOptions:
    """``cxraug report``'s options as given."""

    benchmark: Path | None
    out: Path | None
    compare: Path | None
    note: str
    columns: int
    overwrite: bool
    run: Path | None


@user_errors
def _run_page(opts: ReportOptions) -> None:
    from cxraug import api
    from cxraug.errors import UserError

    if any([opts.benchmark, opts.out, opts.compare, opts.note, opts.overwrite]):
        raise UserError("--run rebuilds RUN/run.html alone; give --benchmark, --out and the rest without it")
    assert opts.run is not None
    out_console().print(f"wrote {api.report_run(opts.run)}")


@user_errors
def _report(opts: ReportOptions) -> None:
    from cxraug import api
    from cxraug.errors import UserError

    if opts.benchmark is None or opts.out is None:
        raise UserError("report needs --benchmark DIR and --out FILE (or --run RUN for a training run's page)")
    page = api.report(opts.benchmark, opts.out, compare=opts.compare, note=opts.note, columns=opts.columns,
                      overwrite=opts.overwrite)  # fmt: skip
    out_console().print(f"wrote {page}")
