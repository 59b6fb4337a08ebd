"""`make demo`'s chain (scripts/demo.sh) at toy size on the built-in sample: every stage's
output exists, the benchmark reaches a verdict with an interval on the rare class, and the
three pages (front page, benchmark, compare) render in a real headless browser with every
image. The script's minutes are for `make demo`; here the generators are tiny and train for
seconds. Also `cxraug report`'s refusals, and the page blocks' escaping."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from test_compare_html import PROBE, _browser, _run_browser

from cxraug.cli import main
from cxraug.page import Bullets, Heading, Para, Table, html, markdown

ROOT = Path(__file__).resolve().parents[1]
TOY = {
    "MINUTES": "0.03",  # about 2 s of training steps each
    "SEEDS": "3",  # the fewest that give intervals
    "EPOCHS": "1",
    "COMPARE_N": "20",
    "CGAN_ARGS": "--batch-size 16",
    "DIFFUSION_ARGS": "--batch-size 8 --set block_out_channels=[8,16]",
    "COMPARE_ARGS": "--bootstrap 50 --speed-images 8 --min-images 10",
    "BENCH_ARGS": "--set model=tiny --set bootstrap_draws=200",
}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    from cxraug.errors import UserError
    from cxraug.metrics.inception import locate_inception_weights

    try:
        locate_inception_weights()  # compare scores with the standard FID network
    except UserError as e:
        pytest.skip(str(e))
    out = tmp_path_factory.mktemp("demo") / "out"
    env = {
        **os.environ,
        **TOY,
        "CXRAUG_THREADS": "1",
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "plugins")]),
    }
    r = subprocess.run(
        ["bash", str(ROOT / "scripts" / "demo.sh"), sys.executable, str(out)],
        capture_output=True, text=True, env=env, timeout=1200, cwd=ROOT,
    )  # fmt: skip
    assert r.returncode == 0, (r.stdout[-3000:], r.stderr[-3000:])
    return out, r.stdout


@pytest.mark.slow
def test_demo_chain_writes_every_stage_and_a_verdict_with_an_interval(demo: tuple[Path, str]) -> None:
    out, printed = demo
    for stage in ("prepare", "train-gen", "synth", "compare", "benchmark", "report"):
        assert re.search(rf"\({stage}: \d+s\)", printed), f"no time printed for {stage}"
    assert printed.strip().splitlines()[-1] == f"open {out.resolve()}/index.html"
    assert (
        "small budget" in printed and "the classifier the same steps for every arm (1 pass over the largest)" in printed
    )
    assert "1 epochs" not in printed + (out / "index.html").read_text(), "a count with the wrong plural"
    expected = [
        "sample32/dataset.json", "sample32-rare/dataset.json", "train-cgan.log", "train-diffusion.log",
        "synth-cgan/provenance.json", "synth-diffusion/provenance.json", "compare/compare.json",
        "compare/compare.html", "benchmark/results.json", "benchmark/summary.md", "benchmark/summary.html",
        "benchmark/class_auroc.png", "index.html",
    ]  # fmt: skip
    assert [f for f in expected if not (out / f).is_file()] == []
    assert len(list(out.glob("runs/*-cgan-*/export"))) == 1 and len(list(out.glob("runs/*-diffusion-*/export"))) == 1
    meta = json.loads((out / "sample32" / "dataset.json").read_text())
    assert meta["source"] == "sample:pneumoniamnist" and meta["real_data"]

    results = json.loads((out / "benchmark" / "results.json").read_text())
    assert [a["name"] for a in results["arms"]] == [
        "real", "oversample", "classic", "logit-adjust", "cgan", "diffusion", "cgan+classic", "diffusion+classic",
        "copy", "noise"]  # fmt: skip
    assert results["rare_classes"] == ["No Finding"] and results["seeds"] == [0, 1, 2]
    assert results["train_counts_real"]["No Finding"] == 50
    assert len({r["steps"] for r in results["runs"]}) == 1  # equal training
    primary = results["primary"]
    assert {(c["arm"], c["against"]) for c in primary} == {
        (g, a) for g in ("cgan", "diffusion") for a in ("copy control", "best baseline")}  # fmt: skip
    assert all(c["diff"]["low"] is not None and not c["verdict"].startswith("no verdict") for c in primary)
    assert results["answer"]["no_verdicts_reason"] is None
    # The page leads with the answer to the declared question, then the details.
    summary = (out / "benchmark" / "summary.md").read_text()
    assert summary.index("## The answer") < summary.index("## The question") < summary.index("## How it was measured")


@pytest.mark.slow
def test_demo_pages_render_in_a_headless_browser(demo: tuple[Path, str], tmp_path: Path) -> None:
    browser = _browser()
    out, _ = demo
    pages = {
        "index.html": (
            2,
            [
                "Did the synthetic images help, beyond their controls and the best baseline?",
                "No Finding",
                "small budget",
            ],
        ),
        "benchmark/summary.html": (5, ["The answer: do the synthetic images help", "Primary comparisons"]),
        "compare/compare.html": (2, ["Paired differences per class"]),
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
        assert len(seen["images"]) >= min_images and set(seen["images"]) == {"ok"}, (name, seen)
        assert seen["tables"] >= (1 if name != "index.html" else 0), (name, seen)
        text = " ".join(dom.stdout.split())
        assert [t for t in texts if t not in text] == [], name
    index = (out / "index.html").read_text()
    for link in ("benchmark/summary.html", "compare/compare.html"):  # relative links that resolve
        assert f'href="{link}"' in index and (out / link).is_file()
    assert index.index("Did the synthetic images help") < index.index("What the generators drew")


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
