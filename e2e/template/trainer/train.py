"""Your training code (a stand-in): fits a line to noisy points with numpy and prints the loss. The
`build:` step of my-model.yaml puts this folder at /app of an image with requirements.txt installed;
train.yaml and pipeline.yaml run it as `python3 /app/train.py`. Each PyTorchJob replica trains alone here
(RANK and WORLD_SIZE come from the training operator: split your data by them, or use torch.distributed)."""

import argparse
import os

import numpy as np


def fit(steps: int = 100, lr: float = 0.1, seed: int = 0) -> tuple[float, float, float]:
    """(w, b, loss) of y = w*x + b fitted by gradient descent to points around y = 3x + 0.5."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=256)
    y = 3.0 * x + 0.5 + rng.normal(scale=0.05, size=x.size)
    w = b = 0.0
    for _ in range(steps):
        err = w * x + b - y
        w, b = w - lr * 2 * (err * x).mean(), b - lr * 2 * err.mean()
    return float(w), float(b), float(((w * x + b - y) ** 2).mean())


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--lr", type=float, default=0.1)
    args = ap.parse_args()
    w, b, loss = fit(args.steps, args.lr, int(os.environ.get("RANK", "0")))
    print(f"rank {os.environ.get('RANK', '0')}/{os.environ.get('WORLD_SIZE', '1')}: w={w:.3f} b={b:.3f} loss={loss:.5f}")
    if loss > 0.01:
        raise SystemExit("did not converge")
