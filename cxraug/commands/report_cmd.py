"""``cxraug report``: the study's front page from a benchmark folder (and a compare folder)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from cxraug.commands.common import out_console, user_errors


def report(
    benchmark: Annotated[Path, typer.Option(help="A `cxraug benchmark` folder.", show_default=False)],
    out: Annotated[Path, typer.Option(help="The HTML file to write, e.g. study/index.html.", show_default=False)],
    compare: Annotated[
        Optional[Path], typer.Option(help="A `cxraug compare` folder of the generator runs behind the synthetic sets.")
    ] = None,
    note: Annotated[str, typer.Option(help="A line under the title, e.g. the budget the study ran on.")] = "",
    columns: Annotated[int, typer.Option(help="Images per row of the sample grids.", min=1, max=32)] = 10,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing page at --out.")] = False,
) -> None:
    """One page that leads with the answer: did the synthetic images beat their controls and the best
    baseline (with intervals), each generator's samples beside real images, links to the other pages."""
    _report(benchmark, out, compare, note, columns, overwrite)


@user_errors
def _report(benchmark: Path, out: Path, compare: Path | None, note: str, columns: int, overwrite: bool) -> None:
    from cxraug import api

    page = api.report(benchmark, out, compare=compare, note=note, columns=columns, overwrite=overwrite)
    out_console().print(f"wrote {page}")
