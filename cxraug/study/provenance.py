"""What a study's cells cost and which code made them, for its page: each cell's CPU and wall
minutes (as measured by the attempt that finished it) and the versions in the cells' records."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from cxraug.fsutil import read_json

if TYPE_CHECKING:
    from cxraug.study.cells import SizeCells
    from cxraug.study.config import StudyConfig


def cost_lines(cfg: StudyConfig, sizes: list[SizeCells]) -> list[str]:
    """Each cell's CPU and wall minutes; a cell continued after a kill says that only its last
    attempt was measured."""
    out = []
    for sc in sizes:
        parts = []
        for name, c in sc.cost.items():
            k = int(c.get("attempts", 1))
            more = f"; the last of {k} attempts, the killed ones not counted" if k > 1 else ""
            parts.append(f"{name} {c['cpu_seconds'] / 60:.1f} CPU-min ({c['seconds'] / 60:.1f} min{more})")
        out.append(f"N = {sc.n}: " + "; ".join(parts))
    return out


def code_line(out: Path) -> str:
    """Which code made the study's finished cells (cell.json's ``code``), so a page continued
    after an upgrade says that its numbers came from more than one version."""
    from cxraug.coderev import count_text

    seen: dict[str, int] = {}
    unrecorded = 0
    for path in sorted(out.glob("n-*/*/cell.json")):
        rec = read_json(path)
        if rec.get("status") != "done":
            continue
        if rec.get("code"):
            seen[rec["code"]] = seen.get(rec["code"], 0) + 1
        else:
            unrecorded += 1
    text = count_text(seen, unrecorded, "finished cells")
    return text[0].upper() + text[1:] + "."
