"""``cxraug report``: the study's front page from a benchmark folder (and a compare folder), or a
training run's own page (``--run``)."""

from __future__ import annotations

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
    if run is not None:
        _run_page(run, [benchmark, out, compare, note, overwrite])
        return
    _report(benchmark, out, compare, note, columns, overwrite)


@user_errors
def _run_page(run: Path, others: list) -> None:
    from cxraug import api
    from cxraug.errors import UserError

    if any(others):
        raise UserError("--run rebuilds RUN/run.html alone; give --benchmark, --out and the rest without it")
    out_console().print(f"wrote {api.report_run(run)}")


@user_errors
def _report(
    benchmark: Path | None, out: Path | None, compare: Path | None, note: str, columns: int, overwrite: bool
) -> None:
    from cxraug import api
    from cxraug.errors import UserError

    if benchmark is None or out is None:
        raise UserError("report needs --benchmark DIR and --out FILE (or --run RUN for a training run's page)")
    page = api.report(benchmark, out, compare=compare, note=note, columns=columns, overwrite=overwrite)
    out_console().print(f"wrote {page}")
