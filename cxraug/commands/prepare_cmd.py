"""``cxraug prepare`` and ``cxraug info``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from cxraug.commands.common import CLASSES_HELP, out_console, parse_list, rich_line, styled, user_errors, warner
from cxraug.data.prepared import absent_classes, imbalance_ratio, open_prepared, summary_rows
from cxraug.data.records import SPLITS

if TYPE_CHECKING:
    from cxraug.data.prepare import PrepareConfig


def dataset_table(meta: dict, title: str) -> Table:
    """Images per class and split, share of all images, and per-split imbalance ratio."""
    real = styled("real data") if meta.get("real_data", True) else styled("NOT REAL DATA", "bold yellow")
    t = Table(title=rich_line(f"{title}\n{meta['source']}, {meta['size']} px, ", real))
    t.add_column("class")
    for s in SPLITS:
        t.add_column(s, justify="right")
    t.add_column("total", justify="right")
    t.add_column("share", justify="right")
    rows = summary_rows(meta)
    for r in rows:
        t.add_row(r["class"], *(str(r[s]) for s in SPLITS), str(r["total"]), f"{r['share']:.1%}")
    totals = {s: sum(r[s] for r in rows) for s in SPLITS}
    t.add_section()
    t.add_row(styled("images", "bold"), *(str(totals[s]) for s in SPLITS), str(sum(totals.values())), "100%")
    patients = meta.get("patients", {})
    t.add_row("patients", *(str(patients.get(s, "")) for s in SPLITS), "", "")
    ratios = [imbalance_ratio(meta, s) for s in SPLITS]
    t.add_row("imbalance", *(f"{r:.1f}" if r else "-" for r in ratios), "", "")
    return t


def dataset_notes(meta: dict) -> list[str | Text]:
    """The lines printed under the table: what the numbers mean and how splits were made."""
    lines = []
    if not meta.get("real_data", True):
        lines.append(styled(meta.get("note") or "NOT REAL DATA", "bold yellow"))
    lines.append("imbalance = largest / smallest class among the classes present in that split")
    for s in SPLITS:
        absent = absent_classes(meta, s)
        if absent:
            lines.append(f"no {s} image: {', '.join(absent)}")
    lines.append(f"splits: {meta['split_method']}")
    return lines


def print_dataset(console: Console, meta: dict, title: str) -> None:
    console.print(dataset_table(meta, title))
    for line in dataset_notes(meta):
        console.print(line)


def prepare(
    out: Annotated[Path, typer.Option(help="Output folder of the prepared dataset.", show_default=False)],
    source: Annotated[
        str, typer.Option(help="nih | medmnist | folder | phantom | sample (built-in real X-rays)")
    ] = "nih",
    data_dir: Annotated[
        Optional[Path], typer.Option(help="Folder of the download (required by --source nih and folder).")
    ] = None,
    size: Annotated[
        int, typer.Option(help="Output image size in pixels (32 to 1024; the generators train powers of two).")
    ] = 64,
    classes: Annotated[
        Optional[str], typer.Option("--classes", "--class", help=CLASSES_HELP, show_default="every class")
    ] = None,
    views: Annotated[Optional[str], typer.Option(help="Comma-separated view positions, e.g. PA,AP (nih).")] = None,
    val_fraction: Annotated[float, typer.Option(help="Share of train_val patients for validation.")] = 0.1,
    test_fraction: Annotated[float, typer.Option(help="Test share of patients where the source has no split.")] = 0.2,
    seed: Annotated[int, typer.Option(help="Seed of the patient splits (and the phantom).")] = 0,
    workers: Annotated[Optional[int], typer.Option(help="Decoding processes.", show_default="every core")] = None,
    strict: Annotated[
        bool, typer.Option("--strict", help="Missing or unreadable images are errors, not skips.")
    ] = False,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace an existing prepared dataset at --out.")
    ] = False,
    npz: Annotated[Optional[Path], typer.Option(help="MedMNIST npz file (required by --source medmnist).")] = None,
    flag: Annotated[
        Optional[str], typer.Option(help="chestmnist | pneumoniamnist.", show_default="from the npz file's name")
    ] = None,
    labels: Annotated[Optional[Path], typer.Option(help="Labels CSV (required by --source folder).")] = None,
    n: Annotated[int, typer.Option("--n", help="Number of phantom images (--source phantom).")] = 2000,
) -> None:
    """Turn a chest X-ray download into a prepared dataset (single-label images, patient splits)."""
    from cxraug.data.prepare import PrepareConfig

    _prepare(
        PrepareConfig(
            source=source, out=out, size=size, data_dir=data_dir, npz=npz, flag=flag, labels=labels,
            classes=parse_list(classes), views=parse_list(views), val_fraction=val_fraction,
            test_fraction=test_fraction, seed=seed, workers=workers, strict=strict, overwrite=overwrite, n=n,
        )
    )  # fmt: skip


@user_errors
def _prepare(cfg: PrepareConfig) -> None:
    from cxraug import api
    from cxraug.progress import RichReporter

    console = out_console()
    warnings: list[str] = []  # printed last, under the table, where they are seen
    result = api.prepare(cfg, reporter=RichReporter(console), warn=warnings.append)
    meta = result.meta
    print_dataset(console, meta, f"prepared {result.out}")
    missing = sum(meta["missing_on_disk"].values())
    if missing:
        per = ", ".join(f"{c} {k}" for c, k in sorted(meta["missing_on_disk"].items(), key=lambda x: -x[1]))
        console.print(
            rich_line((f"{missing} listed single-label images are not on disk, skipped:", "yellow"), f" {per}")
        )
    if result.failed:
        console.print(
            rich_line(
                (f"{len(result.failed)} images could not be decoded, skipped:", "yellow"),
                f" see {result.out / 'failed.csv'}",
            )
        )
    for note in meta["notes"]:
        if note != meta.get("note"):  # the not-real-data note is already printed under the table
            console.print(f"note: {note}")
    console.print(f"wrote {result.out} in {meta['seconds']:.1f}s")
    for line in warnings:
        warner()(line)


def info(
    data: Annotated[Path, typer.Argument(help="A prepared dataset folder.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of a table.")] = False,
) -> None:
    """Show a prepared dataset: images per class and split, share, imbalance ratio."""
    _info(data, as_json)


INFO_KEYS = ("source", "real_data", "note", "size", "classes", "counts", "patients", "split_method")


@user_errors
def _info(data: Path, as_json: bool) -> None:
    prepared = open_prepared(data)
    if as_json:
        obj = {k: prepared.meta.get(k) for k in INFO_KEYS}
        obj["images"] = {s: sum(prepared.meta["counts"][s].values()) for s in SPLITS}
        obj["imbalance_ratio"] = {s: imbalance_ratio(prepared.meta, s) for s in SPLITS}
        print(json.dumps(obj))
    else:
        print_dataset(out_console(), prepared.meta, str(data))
