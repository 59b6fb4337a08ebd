"""compare.html in a real headless browser (Chromium from the OS packages): the page loads
from disk with no network, its tables are there and every image rendered; a screenshot is
taken. Skips, saying why, where no browser is installed (`apt-get install chromium`)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from test_score_support import PixelProjection, copying_generator, noise_generator

from cxraug.compare.bootstrap import BootstrapConfig
from cxraug.compare.core import CompareConfig, compare
from cxraug.compare.output import write_outputs
from cxraug.data.prepared import fingerprint, open_prepared
from cxraug.fsutil import write_json
from cxraug.metrics.score import ScoreConfig

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# Appended to a copy of the page: after load, write what each image did into the DOM.
PROBE = """<script>
window.addEventListener("load", () => {
  const imgs = [...document.images].map(i => i.complete && i.naturalWidth > 0 ? "ok" : "broken");
  const out = document.createElement("pre");
  out.id = "probe";
  out.textContent = JSON.stringify({images: imgs, tables: document.querySelectorAll("table").length});
  document.body.appendChild(out);
});
</script>"""


def _browser() -> str:
    for name in BROWSERS:
        if path := shutil.which(name):
            return path
    pytest.skip("no headless browser installed (Debian/Ubuntu: apt-get install -y chromium)")


def _fake_run(root: Path, name: str) -> Path:
    """A run folder with what compare reads besides the generator: export weights and a clock."""
    from safetensors.numpy import save

    run = root / name
    (run / "export").mkdir(parents=True)
    (run / "export" / "weights.safetensors").write_bytes(save({"w": np.zeros((3, 4), np.float32)}))
    stop = {"step": 5, "kind": "stop", "reason": "steps", "train_s": 30.0, "other_s": 2.0, "images_seen": 320}
    (run / "metrics.jsonl").write_text(json.dumps(stop) + "\n")
    write_json(run / "config.json", {"plugin": "test"})
    return run


def _run_browser(browser: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
           f"--user-data-dir={profile}", *args]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180)


def test_page_renders_in_a_headless_browser(phantom32: Path, tmp_path: Path, monkeypatch) -> None:
    import cxraug.runs

    browser = _browser()
    data = open_prepared(phantom32)
    gens = {"00001-copy": copying_generator(phantom32), "00002-noise": noise_generator(phantom32)}
    paths = {name: _fake_run(tmp_path, name) for name in gens}
    meta = {
        "plugin": "test",
        "step": 5,
        "data": {"path": str(phantom32), "fingerprint": fingerprint(data), "name": data.name},
    }
    monkeypatch.setattr(cxraug.runs, "load_generator", lambda p: (gens[Path(p).name], meta))
    sc = ScoreConfig(n=24, classes=["No Finding", "Infiltration"], min_images=10, kid_subsets=5, use_cache=False)
    cfg = CompareConfig(runs=list(paths.values()), score=sc, bootstrap=BootstrapConfig(resamples=8), speed_images=8)
    result = compare(cfg, PixelProjection(data.size), device="cpu")
    out = write_outputs(result, tmp_path / "cmp")
    html = (out / "compare.html").read_text()
    assert "http://" not in html and "https://" not in html and "<script" not in html  # self-contained
    n_img = len(re.findall(r"<img ", html))
    assert n_img == 3  # No Finding, Infiltration, quality vs cost

    probe = tmp_path / "probe" / "page.html"
    probe.parent.mkdir()
    # The page forbids scripts (CSP); the probe copy drops that line and adds its script.
    probe.write_text(re.sub(r"<meta http-equiv=\"Content-Security-Policy\"[^>]*>", "", html).replace(
        "</body>", PROBE + "</body>"))  # fmt: skip
    dom = _run_browser(browser, tmp_path / "profile", "--virtual-time-budget=10000", "--dump-dom", probe.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    found = re.search(r'<pre id="probe">(.*?)</pre>', dom.stdout, re.S)
    assert found, dom.stdout[-2000:]
    seen = json.loads(found.group(1).replace("&quot;", '"'))
    assert seen["images"] == ["ok"] * n_img and seen["tables"] == 4  # cost, quality, floor, differences
    assert "Paired differences per class" in dom.stdout and "00002-noise" in dom.stdout

    shot = tmp_path / "shot" / "compare.png"
    shot.parent.mkdir()
    r = _run_browser(
        browser,
        tmp_path / "profile",
        "--window-size=1280,2400",
        f"--screenshot={shot}",
        (out / "compare.html").as_uri(),
    )
    assert r.returncode == 0 and shot.is_file() and shot.stat().st_size > 10_000, r.stderr[-2000:]
    # The noise run is far from the real images: its FID difference against the copying run excludes 0.
    fid = next(d for d in result.differences if d["metric"] == "fid" and d["class"] == "No Finding")
    assert fid["excludes_zero"] and fid["better"] == "00001-copy"
