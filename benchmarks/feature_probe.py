"""Vision-aided GAN's selection rule (Kumari et al. 2022, model_selection.py): a linear probe on
pooled features, telling a cgan run's samples from real images. A feature network whose probe
separates them sees what the generator gets wrong; the same probe on the cgan's own D features
says how much of that its D sees.

    python benchmarks/feature_probe.py --run runs/00003-cgan-nih32 --data data/nih32 --split val --n 500

Features, each pooled over positions: EfficientNet-Lite0 (ImageNet weights, grey stem) after
its 1/16 stage, at the image size and upsampled 2x; the same network with random weights (a
control: what any conv net separates); the cgan's D before its heads (phi(x), from the run's
latest checkpoint). Probe: logistic regression (C = 0.2) on standardised features, accuracy
over 5 stratified folds (mean and sd); chance is 0.5. Samples are drawn with the real images'
labels (class-matched), from the EMA generator. Needs the ``features`` extra.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

PROBE_C = 0.2  # Vision-aided GAN's model selection
FOLDS = 5
SEED = 0


def probe_accuracy(real: np.ndarray, fake: np.ndarray, folds: int = FOLDS) -> tuple[float, float]:
    """Mean and sd over stratified folds of a logistic-regression probe's accuracy, real vs fake."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x = np.concatenate([real, fake]).astype(np.float64)
    y = np.r_[np.ones(len(real)), np.zeros(len(fake))]
    probe = make_pipeline(StandardScaler(), LogisticRegression(C=PROBE_C, max_iter=5000))
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=SEED)
    acc = cross_val_score(probe, x, y, cv=cv, scoring="accuracy")
    return float(acc.mean()), float(acc.std())


@torch.no_grad()
def lite0_pooled(images: torch.Tensor, upsample: int = 1, pretrained: bool = True, batch: int = 256) -> np.ndarray:
    """EfficientNet-Lite0's activations after its 1/16 stage (112 channels), averaged over
    positions, for images in [-1, 1]."""
    import torch.nn.functional as F
    from cxraug_cgan import lite0
    from cxraug_cgan.projected import SCALES

    if pretrained:
        net = lite0.pretrained(grey=True)
    else:
        torch.manual_seed(SEED)
        net = lite0.freeze(lite0.EfficientNetLite0(grey=True))
    out = []
    for chunk in images.split(batch):
        x = lite0.normalise(chunk)
        if upsample > 1:
            x = F.interpolate(x, scale_factor=upsample, mode="bilinear", align_corners=False)
        out.append(net.features(x, SCALES[-1][0]).mean(dim=(2, 3)))
    return torch.cat(out).numpy()


@torch.no_grad()
def d_pooled(d: torch.nn.Module, images: torch.Tensor, batch: int = 256) -> np.ndarray:
    """The cgan D's phi(x) (what its heads read); one part per chunk, as D sees a batch of reals."""
    d.eval()
    return torch.cat([d.pooled(chunk) for chunk in images.split(batch)]).numpy()


def load_run(run: Path):  # -> CGAN with the run's latest G (EMA) and D
    """The cgan of ``run`` at its latest usable checkpoint."""
    from cxraug_cgan import CGAN
    from cxraug_cgan.plugin import without_legacy

    from cxraug import checkpoint, runs
    from cxraug.config import validated
    from cxraug.data.prepared import open_prepared
    from cxraug.errors import UserError
    from cxraug.generator import DataSpec

    cfg = runs.read_run_config(run)
    if cfg["plugin"] != "cgan":
        raise UserError(f"{run} is a {cfg['plugin']} run; the probe reads a cgan's discriminator")
    data = open_prepared(cfg["data"]["path"])
    gen = CGAN(validated(CGAN.Config, cfg["model"], f"model key in {run / runs.CONFIG}"),
               DataSpec(classes=tuple(data.classes), size=data.size), seed=0)  # fmt: skip
    found = checkpoint.load_latest(run)
    if found is None:
        raise UserError(f"{run} has no checkpoint yet: train it first")
    state = found[1]["plugin"]
    gen.D_plain.load_state_dict(without_legacy(state["D"]))
    gen.ema.load_state_dict({**state["ema"], "weights": without_legacy(state["ema"]["weights"])})
    return gen, found[0]


def reals(data_dir: Path, split: str, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Up to ``n`` images of ``split`` drawn without replacement (seed 0), in [-1, 1], and labels."""
    from cxraug.data.prepared import open_prepared

    data = open_prepared(data_dir)
    labels = data.labels(split)
    idx = np.sort(np.random.default_rng(SEED).permutation(len(labels))[:n])
    images = torch.from_numpy(np.asarray(data.images(split)[idx], dtype=np.float32)).div(127.5).sub(1).unsqueeze(1)
    return images, torch.from_numpy(labels[idx]).long()


def probe(run: Path, data_dir: Path, split: str, n: int) -> dict:
    gen, step = load_run(run)
    real, labels = reals(data_dir, split, n)
    fake = gen.sample(labels, torch.Generator().manual_seed(SEED))
    rows = {}
    for name, fn in {
        "lite0": lambda x: lite0_pooled(x),
        "lite0-up2": lambda x: lite0_pooled(x, upsample=2),
        "lite0-random": lambda x: lite0_pooled(x, pretrained=False),
        "cgan-D": lambda x: d_pooled(gen.D_plain, x),
    }.items():
        mean, sd = probe_accuracy(fn(real), fn(fake))
        rows[name] = {"accuracy": round(mean, 3), "sd": round(sd, 3)}
    return {"run": str(run), "step": step, "data": str(data_dir), "split": split, "n_real": len(real),
            "n_fake": len(fake), "probe": f"logistic regression C={PROBE_C}, {FOLDS}-fold accuracy",
            "features": rows}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", type=Path, required=True, help="a cgan run directory (its latest checkpoint)")
    ap.add_argument("--data", type=Path, required=True, help="prepared data with the real images")
    ap.add_argument("--split", default="val")
    ap.add_argument("--n", type=int, default=500, help="real images (and as many samples, class-matched)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, help="also write the result as JSON here")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    from cxraug.errors import UserError

    try:
        res = probe(args.run, args.data, args.split, args.n)
    except UserError as e:
        print(f"error: {e}")
        return 2
    print(f"real vs fake linear probe ({res['probe']}) on {res['n_real']} real {args.split} images of {args.data} "
          f"and {res['n_fake']} class-matched samples of {args.run} at step {res['step']} (chance 0.5):")  # fmt: skip
    for name, r in res["features"].items():
        print(f"  {name:<13} {r['accuracy']:.3f} ± {r['sd']:.3f}")
    print(json.dumps(res))
    if args.out:
        from cxraug.fsutil import write_json

        write_json(args.out, res)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
