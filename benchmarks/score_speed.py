"""Speed of ``cxraug score``'s feature extraction and feature cache, against plain torchmetrics.

On the same real NIH images (prepared at --size px from ../shared/data, or a phantom set when
that is absent), in the same process, after a warm-up of each:

  torchmetrics  FrechetInceptionDistance(feature=2048, feature_extractor_weights_path=...,
                antialias=False).update(uint8 N x 3 x S x S, real=True) in batches: torch-fidelity's
                Inception with the same TF 2015-12-05 weights (converted from the TorchScript
                file) and the original TF1 bilinear resize (torchmetrics' default antialias=True
                resizes with PyTorch's bilinear instead; its feature difference is printed too)
  cxraug        InceptionExtractor.extract(uint8 N x S x S): the same network and resize,
                grey folded into the first convolution, channels-last

and prints images/s of each and their ratio (target: cxraug >= torchmetrics), the largest
feature difference between the two networks on those images, the time of one FID from
features (torchmetrics' eigvals vs cxraug's SVD), and the time of a whole score run with an
empty feature cache against a second run that finds its real features cached.

    .venv/bin/python benchmarks/score_speed.py               # 128 images, 64 px
    .venv/bin/python benchmarks/score_speed.py --n 512 --size 128 --device cuda
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("CXRAUG_SHARED_DATA", ROOT.parent / "shared" / "data"))


def prepared_dataset(tmp: Path, size: int) -> Path:
    from cxraug.data.prepare import PrepareConfig, prepare

    nih = SHARED / "nih-cxr14"
    if (nih / "Data_Entry_2017_v2020.csv").is_file():
        cfg = PrepareConfig(source="nih", data_dir=nih, out=tmp / "nih", size=size, workers=os.cpu_count() or 1)
    else:
        print(f"(no real NIH data at {nih}: using the phantom set, NOT real data)")
        cfg = PrepareConfig(source="phantom", out=tmp / "phantom", size=size, n=2000, workers=1)
    return prepare(cfg).out


def best_rate(fn, n: int, reps: int) -> float:
    best = float("inf")
    for _ in range(reps):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return n / best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=128, help="images to extract")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--reps", type=int, default=2, help="timed repetitions (best kept)")
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()
    warnings.filterwarnings("ignore", category=UserWarning, module="torchmetrics")

    from cxraug.commands.common import configure_threads
    from cxraug.data.prepared import open_prepared
    from cxraug.metrics.features import load_feature_extractor
    from cxraug.metrics.inception import state_dict_from_torchscript
    from cxraug.metrics.score import ScoreConfig, score
    from cxraug.metrics.sources import FakeSource
    from cxraug.metrics.stats import frechet_distance

    configure_threads()
    ours = load_feature_extractor(device=args.device)
    dev = ours.device
    print(
        f"device {dev}, {torch.get_num_threads()} CPU threads, weights {ours.weights.path.name} ({ours.weights.form})"
    )
    with tempfile.TemporaryDirectory() as tmp_:
        tmp = Path(tmp_)
        data = open_prepared(prepared_dataset(tmp, args.size))
        images = np.array(data.images("train")[: args.n])
        n = len(images)

        from torchmetrics.image.fid import FrechetInceptionDistance

        pth = tmp / "inception-2015-12-05-from-torchscript.pth"
        sd = state_dict_from_torchscript(ours.weights.path)
        torch.save({**sd, "fc.weight": torch.zeros(1008, 2048), "fc.bias": torch.zeros(1008)}, pth)
        tm = FrechetInceptionDistance(feature=2048, feature_extractor_weights_path=str(pth), antialias=False).to(dev)
        rgb = torch.from_numpy(images)[:, None].repeat(1, 3, 1, 1)

        def torchmetrics_update() -> None:
            for i in range(0, n, args.batch_size):
                tm.update(rgb[i : i + args.batch_size].to(dev), real=True)

        def cxraug_extract() -> np.ndarray:
            return ours.extract(images, batch_size=args.batch_size)

        # Warm-up (oneDNN / cuDNN kernel selection) on one batch each, then alternate timings.
        tm.update(rgb[: min(8, n)].to(dev), real=True)
        ours.extract(images[: min(8, n)])
        rate_tm = best_rate(torchmetrics_update, n, args.reps)
        rate_ours = best_rate(cxraug_extract, n, args.reps)
        print(f"feature extraction, {n} images of {args.size}px, batch {args.batch_size}:")
        print(f"  torchmetrics FID update  {rate_tm:8.2f} img/s")
        print(
            f"  cxraug extract           {rate_ours:8.2f} img/s   ratio cxraug/torchmetrics {rate_ours / rate_tm:.2f}x"
        )

        check = min(16, n)
        tm_default = FrechetInceptionDistance(feature=2048, feature_extractor_weights_path=str(pth)).to(dev)
        with torch.no_grad():
            ref = tm.inception(rgb[:check].to(dev)).float().cpu().numpy()
            ref_default = tm_default.inception(rgb[:check].to(dev)).float().cpu().numpy()
        mine = ours.extract(images[:check])
        print(f"  max |feature difference| on {check} images: {np.abs(ref - mine).max():.2e} "
              f"(torchmetrics' default antialias=True resize: {np.abs(ref_default - mine).max():.2e}; "
              f"features reach {np.abs(mine).max():.1f})")  # fmt: skip

        feats = cxraug_extract()
        half = n // 2
        t0 = time.perf_counter()
        fid_ours = frechet_distance(feats[:half], feats[half:])
        t_ours = time.perf_counter() - t0
        tm_fid = FrechetInceptionDistance(feature=_Identity()).set_dtype(torch.float64)
        tm_fid.update(torch.from_numpy(feats[:half]).double(), real=True)
        tm_fid.update(torch.from_numpy(feats[half:]).double(), real=False)
        t0 = time.perf_counter()
        fid_tm = float(tm_fid.compute())
        t_tm = time.perf_counter() - t0
        print(f"FID from features ({half} vs {n - half}): torchmetrics {fid_tm:.4f} in {t_tm:.2f}s, "
              f"cxraug {fid_ours:.4f} in {t_ours:.3f}s ({t_tm / max(t_ours, 1e-9):.0f}x)")  # fmt: skip

        cls = data.classes[int(np.bincount(data.labels("val")).argmax())]
        pool = np.asarray(data.images("train")[data.labels("train") == data.classes.index(cls)])
        src = FakeSource(classes=data.classes, size=data.size, draw=lambda c, k, r: pool[:k])
        cfg = ScoreConfig(n=min(64, len(pool)), classes=[cls], min_images=6, cache_dir=tmp / "cache")
        t0 = time.perf_counter()
        first = score(data, src, cfg, ours)
        t_first = time.perf_counter() - t0
        t0 = time.perf_counter()
        second = score(data, src, cfg, ours)
        t_second = time.perf_counter() - t0
        c1, c2 = first.context["cache"], second.context["cache"]
        print(f"score of '{cls}' ({cfg.n} synthetic, {first.rows[0]['n_real']} real val, memorization on):")
        print(f"  empty cache  {t_first:7.2f}s ({c1['misses']} misses)")
        print(f"  cached       {t_second:7.2f}s ({c2['hits']} hits)   saved {t_first - t_second:.2f}s "
              f"({t_first / t_second:.1f}x faster)")  # fmt: skip


class _Identity(torch.nn.Module):
    num_features = 2048

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


if __name__ == "__main__":
    main()
