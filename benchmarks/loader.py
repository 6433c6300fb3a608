"""Data loader speed against the training step: is the loader ever the bottleneck?

For each dataset: img/s of the training DataLoader (EpochBatchSampler keys, augmentation preset,
batch 8, 128x128) with 0, 1 and 2 worker processes, with the in-memory cache (decoded once, then
only augmented) and without it (every sample decoded, resized and augmented each time), and the
time to fill the cache. The training step (U-Net width 32, seglab's runtime) is timed in the same
run for comparison. Worker start-up is excluded (the first batch is not timed).

    python benchmarks/loader.py                                   # Pet subset and CamVid from ../shared/data
    python benchmarks/loader.py --data sample --presets light strong --json loader.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from seglab.config import make_config
from seglab.data import SegmentationDataset, open_split
from seglab.engine.device import Runtime
from seglab.engine.sampler import EpochBatchSampler

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
DEFAULT_DATA = [str(SHARED / "oxford-iiit-pet-subset"), str(SHARED / "camvid")]


def loader_speed(dataset: SegmentationDataset, batch: int, workers: int, images: int) -> float:
    """img/s over at least `images` samples after the first batch."""
    sampler = EpochBatchSampler(len(dataset), batch, seed=0)
    loader = DataLoader(dataset, batch_sampler=sampler, num_workers=workers, persistent_workers=workers > 0)
    seen, epoch, start = -1, 0, None
    while seen < images:
        epoch += 1
        sampler.set_epoch(epoch)
        for batch_images, _, _ in loader:
            if start is None:  # the first batch pays for the worker start-up
                start, seen = time.perf_counter(), 0
                continue
            seen += len(batch_images)
            if seen >= images:
                break
    return seen / (time.perf_counter() - start)


def train_step_speed(imgsz: int, batch: int, steps: int = 6) -> float:
    sys.path.insert(0, str(Path(__file__).parent))
    from train_step import make_trainer, time_steps

    cfg = make_config(imgsz=imgsz, batch=batch)
    trainer = make_trainer(32, Runtime.from_config("auto", "auto", True), cfg)
    images = torch.randint(0, 256, (batch, 3, imgsz, imgsz), dtype=torch.uint8)
    masks = torch.randint(0, 3, (batch, imgsz, imgsz))
    return time_steps(trainer, images, masks, steps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", nargs="+", default=DEFAULT_DATA)
    parser.add_argument("--imgsz", type=int, default=128)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--presets", nargs="+", default=["light"], help="augmentation presets to time")
    parser.add_argument("--cached-images", type=int, default=1600, help="samples timed per cached setting")
    parser.add_argument("--uncached-images", type=int, default=160, help="samples timed per uncached setting")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; imgsz {args.imgsz}, batch {args.batch}")
    step = train_step_speed(args.imgsz, args.batch)
    print(f"training step (U-Net w32): {step:.1f} img/s", flush=True)
    results = {"imgsz": args.imgsz, "batch": args.batch, "train_step_img_s": step, "datasets": {}}
    for data in args.data:
        cfg = make_config(data=data, imgsz=args.imgsz)
        spec = open_split(cfg, "train")
        row = results["datasets"][data] = {"train_pairs": len(spec.pairs)}
        start = time.perf_counter()
        cached = {p: SegmentationDataset(spec, args.imgsz, augment=p, cache=True) for p in args.presets}
        first = cached[args.presets[0]].preload()
        row["cache_fill_img_s"] = len(first) / (time.perf_counter() - start)
        for dataset in cached.values():  # share the decoded samples
            dataset._cached = first._cached
        print(f"{data}: {len(spec.pairs)} train pairs; filling the cache: {row['cache_fill_img_s']:.0f} img/s",
              flush=True)
        for preset in args.presets:
            uncached = SegmentationDataset(spec, args.imgsz, augment=preset, cache=False)
            for workers in args.workers:
                for name, dataset, n in (("cache", cached[preset], args.cached_images),
                                         ("no_cache", uncached, args.uncached_images)):
                    speed = loader_speed(dataset, args.batch, workers, n)
                    row[f"{preset}_{name}_workers_{workers}"] = speed
                    print(f"  {preset:6s} {name:8s} workers={workers}: {speed:7.0f} img/s "
                          f"({speed / step:.0f}x the training step)", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
