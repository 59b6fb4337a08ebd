"""`make demo` (scripts/demo.sh: `cxraug study` with a small preset, two shards at once, then the
page) at toy size on the built-in sample: every size's cells exist, each benchmark reaches a
verdict with an interval on the rare class, and the study page and the pages it links to render
in a real headless browser with every image. The script's steps are for `make demo`; here the
generators are tiny and train for a few steps. Also `cxraug report`'s refusals, and the page
blocks' escaping."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from killsuite import TOY_STUDY_YAML
from test_compare_html import PROBE, _browser, _run_browser

from cxraug.cli import main
from cxraug.page import Bullets, Heading, Para, Table, html, markdown

ROOT = Path(__file__).resolve().parents[1]
TOY = {
    "SIZES": "10,20",
    "CGAN_STEPS": "4",
    "DIFFUSION_STEPS": "2",
    "SEEDS": "3",  # the fewest that give intervals
    "EPOCHS": "1",
    "COMPARE_N": "20",
}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    from cxraug.errors import UserError
    from cxraug.metrics.inception import locate_inception_weights

    try:
        locate_inception_weights()  # compare scores with the standard FID network
    except UserError as e:
        pytest.skip(str(e))
    base = tmp_path_factory.mktemp("demo")
    out = base / "out"
    (base / "toy.yaml").write_text(TOY_STUDY_YAML)
    env = {
        **os.environ,
        **TOY,
        "STUDY_ARGS": f"--config {base / 'toy.yaml'}",
        "CXRAUG_THREADS": "1",
        "COLUMNS": "160",
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "plugins")]),
    }
    r = subprocess.run(
        ["bash", str(ROOT / "scripts" / "demo.sh"), sys.executable, str(out)],
        capture_output=True, text=True, env=env, timeout=1800, cwd=ROOT,
    )  # fmt: skip
    assert r.returncode == 0, (r.stdout[-3000:], r.stderr[-3000:])
    return out, r.stdout


@pytest.mark.slow
def test_demo_is_a_study_with_every_cell_and_a_verdict_with_an_interval(demo: tuple[Path, str]) -> None:
    out, printed = demo
    lines = printed.strip().splitlines()
    assert lines[-2].startswith("demo finished in ") and lines[-1] == "open " + str(
        (out / "study" / "study.html").resolve()
    )
    assert "open" in lines[-3]  # the study's own last line, under the table and the answer
    assert "0 cells made" in printed, "the last call only reads the cells the two shards made"
    study = out / "study"
    for f in ("study.html", "study.md", "study.csv", "curve.png", "quality.png"):
        assert (study / f).is_file(), f
    meta = json.loads((out / "sample32" / "dataset.json").read_text())
    assert meta["source"] == "sample:pneumoniamnist" and meta["real_data"]
    for n in (10, 20):
        size = study / f"n-{n:04d}"
        for g, steps in (("cgan", 4), ("diffusion", 2)):
            run = next((size / f"gen-{g}-s0" / "runs").glob("*/config.json")).parent
            stop = [json.loads(ln) for ln in (run / "metrics.jsonl").read_text().splitlines() if ln.strip()][-1]
            assert stop["step"] == steps  # budgets in steps: the same on any machine
        results = json.loads((size / "benchmark" / "out" / "results.json").read_text())
        assert results["train_counts_real"]["No Finding"] == n and results["seeds"] == [0, 1, 2]
        assert [a["name"] for a in results["arms"]][:6] == [
            "real", "oversample", "classic", "logit-adjust", "cgan@fill", "diffusion@fill"]  # fmt: skip
        assert len({r["steps"] for r in results["runs"]}) == 1  # equal training
        primary = results["primary"]
        assert {(c["arm"], c["against"]) for c in primary} == {
            (g, a) for g in ("cgan@fill", "diffusion@fill") for a in ("copy control", "best baseline")}  # fmt: skip
        assert all(c["diff"]["low"] is not None and not c["verdict"].startswith("no verdict") for c in primary)
    md = (study / "study.md").read_text()
    assert md.index("## The answer") < md.index("## Δ AUROC") < md.index("## What the generators drew")


@pytest.mark.slow
def test_demo_pages_render_in_a_headless_browser(demo: tuple[Path, str], tmp_path: Path) -> None:
    browser = _browser()
    out, _ = demo
    pages = {
        "study/study.html": (4, ["Did synthetic No Finding images help", "The generators' quality against N"]),
        "study/n-0010/benchmark/out/summary.html": (0, ["The answer: do the synthetic images help"]),
        "study/n-0010/compare/out/compare.html": (2, ["Paired differences per class"]),
    }
    for name, (min_images, texts) in pages.items():
        page = (out / name).read_text()
        assert "http://" not in page and "https://" not in page and "<script" not in page  # self-contained
        probe = tmp_path / name.replace("/", "_")
        # The page forbids scripts (CSP); the probe copy drops that line and adds its script.
        probe.write_text(
            re.sub(r"<meta http-equiv=\"Content-Security-Policy\"[^>]*>", "", page).replace(
                "</body>", PROBE + "</body>"
            )
        )
        dom = _run_browser(browser, tmp_path / "profile", "--virtual-time-budget=10000", "--dump-dom", probe.as_uri())
        assert dom.returncode == 0, dom.stderr[-2000:]
        found = re.search(r'<pre id="probe">(.*?)</pre>', dom.stdout, re.S)
        assert found, dom.stdout[-2000:]
        seen = json.loads(found.group(1).replace("&quot;", '"'))
        assert len(seen["images"]) >= min_images and set(seen["images"]) <= {"ok"}, (name, seen)
        assert seen["tables"] >= 1, (name, seen)
        text = " ".join(dom.stdout.split())
        assert [t for t in texts if t not in text] == [], name
    index = (out / "study" / "study.html").read_text()
    for link in ("n-0010/benchmark/out/summary.html", "n-0020/compare/out/compare.html"):  # relative links
        assert f'href="{link}"' in index and (out / "study" / link).is_file()


def _cli(argv: list[str], capsys) -> tuple[int, str]:
    with pytest.raises(SystemExit) as e:
        main(argv)
    return e.value.code, capsys.readouterr().err


def test_report_refuses_what_it_cannot_build_on(tmp_path: Path, capsys) -> None:
    bench = tmp_path / "bench"
    bench.mkdir()
    code, err = _cli(["report", "--benchmark", str(bench), "--out", str(tmp_path / "i.html")], capsys)
    assert code == 2 and "not a finished benchmark folder" in err and len(err.strip().splitlines()) == 1
    (bench / "results.json").write_text(json.dumps({"config": {}}))
    code, err = _cli(["report", "--benchmark", str(bench), "--out", str(tmp_path / "i.html")], capsys)
    assert code == 2 and "--report-only" in err
    code, err = _cli(["report", "--benchmark", str(bench), "--out", str(tmp_path / "page.txt")], capsys)
    assert code == 2 and "must name an .html file" in err
    (tmp_path / "old.html").write_text("mine")
    code, err = _cli(["report", "--benchmark", str(bench), "--out", str(tmp_path / "old.html")], capsys)
    assert code == 2 and "--overwrite" in err and (tmp_path / "old.html").read_text() == "mine"
    assert not (tmp_path / "i.html").exists()


def test_page_blocks_render_alike_and_escape_html() -> None:
    blocks = [
        Heading(2, "The <answer>"),
        Para("**Yes**: `cgan` helped"),
        Bullets(["a | b", "<script>x</script>"]),
        Table(["arm", "Δ"], [["cgan", "+0.1 [0.0, 0.2]"]], caption="No intervals: 2 seeds, 3 needed."),
    ]
    md = markdown("t", blocks)
    assert md.startswith("# t\n\n## The <answer>\n\n**Yes**: `cgan` helped")
    assert "| cgan | +0.1 [0.0, 0.2] |" in md and "No intervals: 2 seeds" in md
    page = html("t", blocks, {})
    assert "<strong>Yes</strong>: <code>cgan</code> helped" in page
    assert "<script>" not in page and "&lt;script&gt;" in page and "The &lt;answer&gt;" in page
    assert "<td>+0.1 [0.0, 0.2]</td>" in page
