"""How much do seglab metrics cost?

1. Updating the metrics (dataset + per-image reductions, from logits) for a batch of
   8 x 512 x 512, as a share of one training step of the default model (classic U-Net,
   width 32, 3 classes, cross-entropy, AdamW) measured in the same run. Target: < 5 %.
2. Boundary F1 over 100 images of 512 x 512 with 11 classes. Target: < 10 s.

Run:  python benchmarks/metrics_speed.py [--steps 1] [--images 100]
"""
from __future__ import annotations

import argparse
import math
import time

import numpy as np
import torch
from torch import nn

from seglab.losses import build_loss
from seglab.metrics import BoundaryF1, ConfusionMatrix, SegmentationMetrics


def default_model(num_classes: int = 3, width: int = 32) -> tuple[nn.Module, str]:
    """seglab's U-Net when seglab.models exists, else a small classic U-Net built here."""
    try:
        from seglab.models import MODELS
        return MODELS["unet"](num_classes=num_classes, width=width), "seglab.models.MODELS['unet']"
    except (ImportError, KeyError):
        pass

    def block(cin, cout):
        return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(True),
                             nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(True))

    class UNet(nn.Module):
        def __init__(self):
            super().__init__()
            widths = [width * 2 ** i for i in range(5)]
            self.down = nn.ModuleList([block(3, widths[0])] + [block(a, b) for a, b in zip(widths, widths[1:])])
            self.up = nn.ModuleList([nn.ConvTranspose2d(b, a, 2, stride=2) for a, b in zip(widths, widths[1:])])
            self.dec = nn.ModuleList([block(2 * a, a) for a in widths[:-1]])
            self.head = nn.Conv2d(widths[0], num_classes, 1)

        def forward(self, x):
            skips = []
            for i, d in enumerate(self.down):
                x = d(x if i == 0 else nn.functional.max_pool2d(x, 2))
                skips.append(x)
            for i in reversed(range(len(self.up))):
                x = self.dec[i](torch.cat([skips[i], self.up[i](x)], dim=1))
            return self.head(x)

    return UNet(), "inline classic U-Net"


def scene_masks(n: int, c: int, size: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Street-scene-like truth (bands + ellipses) and a prediction with blocky, shifted boundaries and blunders."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    target = np.empty((n, size, size), dtype=np.int64)
    pred = np.empty_like(target)
    for i in range(n):
        wave = lambda a: a + 20 * np.sin(xx / rng.uniform(30, 90) + rng.uniform(0, 6))  # noqa: E731
        t = np.where(yy < wave(size * 0.3), 0, np.where(yy < wave(size * 0.6), 1, 2))
        for _ in range(rng.integers(8, 20)):
            cy, cx = rng.uniform(0, size, 2)
            ry, rx = rng.uniform(5, 60, 2)
            t[((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 < 1] = rng.integers(3, c)
        p = np.kron(t[::4, ::4], np.ones((4, 4), dtype=np.int64))
        p = np.roll(p, (rng.integers(-2, 3), rng.integers(-2, 3)), axis=(0, 1))
        for _ in range(rng.integers(2, 6)):
            cy, cx = rng.uniform(0, size, 2)
            r = rng.uniform(5, 30)
            p[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = rng.integers(0, c)
        t[:8] = 255  # an ignored strip
        target[i], pred[i] = t, p
    return torch.from_numpy(pred), torch.from_numpy(target)


def timed(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1, help="timed training steps (after one warm-up step)")
    parser.add_argument("--images", type=int, default=100, help="images for the Boundary F1 timing")
    args = parser.parse_args()
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")

    model, source = default_model()
    loss_fn = build_loss("ce", 3)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    images = torch.randn(8, 3, 512, 512)
    labels = torch.randint(0, 3, (8, 512, 512))

    def train_step():
        optimizer.zero_grad(set_to_none=True)
        loss_fn(model(images), labels).backward()
        optimizer.step()

    train_step()
    step = timed(train_step, args.steps)
    print(f"training step ({source}, width 32, batch 8x3x512x512): {step:.3f} s")

    with torch.no_grad():
        logits = model(images)
    suite = SegmentationMetrics(3)
    cm = ConfusionMatrix(3)
    pred = logits.argmax(1)
    t_suite = timed(lambda: suite.update(logits, labels), 5)
    t_cm = timed(lambda: cm.update(pred, labels), 5)
    print(f"SegmentationMetrics.update(logits) dataset+per-image, 8x512x512: {1000 * t_suite:.1f} ms "
          f"= {100 * t_suite / step:.2f} % of a training step (target < 5 %)")
    print(f"ConfusionMatrix.update(labels), 8x512x512: {1000 * t_cm:.1f} ms = {100 * t_cm / step:.2f} % of a step")

    bf_pred, bf_target = scene_masks(args.images, 11, 512)
    bf = BoundaryF1(11)
    t_batch = timed(lambda: BoundaryF1(11).update(bf_pred[:8], bf_target[:8]), 1)
    print(f"BoundaryF1.update, 8x512x512, 11 classes: {1000 * t_batch:.1f} ms = {100 * t_batch / step:.2f} % of a step")
    start = time.perf_counter()
    for i in range(0, args.images, 8):
        bf.update(bf_pred[i:i + 8], bf_target[i:i + 8])
    result = bf.compute()
    t_bf = time.perf_counter() - start
    radius = 0.0075 * math.hypot(512, 512)
    print(f"BoundaryF1 over {args.images} images 512x512, 11 classes (radius {radius:.2f} px): {t_bf:.2f} s "
          f"(target < 10 s), BF = {result['bf']:.4f}")


if __name__ == "__main__":
    main()
