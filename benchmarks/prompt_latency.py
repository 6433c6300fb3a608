"""Interactive latency of seglab's click model: set_image seconds and per-click milliseconds at 512 px.

    python benchmarks/prompt_latency.py                     # random-init click_seg (same cost as trained)
    python benchmarks/prompt_latency.py runs/prompt/best.pt --size 512 --threads 2 --clicks 20

Runs the path the page and `seglab val` use: `Predictor.set_image` once, then clicks one after the other
(each with every click so far and the previous low-res logits, as the click benchmark does). Prints the
CPU's flags (lscpu), the load average (the numbers mean little on a busy machine) and the medians.
The target (issue 16): one click -> updated mask in <= 50 ms at 512 px on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch

from seglab.benchmark.timing import lscpu_summary
from seglab.models.prompt import ClickSeg
from seglab.prompt.click_backend import ClickBackend, load
from seglab.prompt.predictor import Predictor


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("checkpoint", nargs="?", default="", help="a click-model checkpoint; none = random init")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--clicks", type=int, default=20)
    parser.add_argument("--images", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(lscpu_summary())
    print(f"torch {torch.__version__}, {args.threads} threads, load average before {os.getloadavg()[0]:.2f}")
    if args.checkpoint:
        backend = load(args.checkpoint, device="cpu", size=args.size)
    else:
        model = ClickSeg()
        backend = ClickBackend(model, args.size, model.normalization["mean"], model.normalization["std"], "cpu")
    predictor = Predictor(backend)
    rng = np.random.default_rng(0)
    embeds, clicks = [], []
    for _ in range(args.images + 1):  # the first image warms up
        image = rng.integers(0, 255, (args.size, args.size, 3), dtype=np.uint8)
        start = time.perf_counter()
        predictor.set_image(image)
        embeds.append(time.perf_counter() - start)
        points, labels, previous, times = [], [], None, []
        for k in range(args.clicks):
            points.append(rng.integers(0, args.size, 2).tolist())
            labels.append(int(k % 3 != 2))
            start = time.perf_counter()
            masks, scores, low = predictor.predict(point_coords=points, point_labels=labels, mask_input=previous,
                                                   multimask_output=previous is None)
            times.append(time.perf_counter() - start)
            previous = low[[int(np.argmax(scores))]]
        clicks.append(times)
    embeds, clicks = embeds[1:], np.array(clicks[1:]).ravel()
    print(f"{backend.name} at {args.size} px: set_image median {np.median(embeds) * 1000:.0f} ms; per click median "
          f"{np.median(clicks) * 1000:.1f} ms, p90 {np.percentile(clicks, 90) * 1000:.1f} ms, min "
          f"{clicks.min() * 1000:.1f} ms ({len(clicks)} clicks); load average after {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
