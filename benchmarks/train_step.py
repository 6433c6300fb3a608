"""Training-step speed: seglab's step (auto precision + channels_last) vs a plain eager fp32 NCHW loop.

Both train the same classic U-Net with the same loss, batch and optimizer, in the same process,
interleaved (plain, seglab, plain, seglab, ...) so machine noise hits both alike. Also measures the
machine's matmul peaks (fp32 and bf16 torch.mm 2048^2) and the data loader's img/s in this run.

    python benchmarks/train_step.py                  # widths 16 and 32, 128x128, batch 8
    python benchmarks/train_step.py --widths 32 --rounds 5 --json out.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
from torch.utils.data import DataLoader
from torch.utils.flop_counter import FlopCounterMode

from seglab.config import make_config
from seglab.data import SegmentationDataset, open_split
from seglab.engine.device import Runtime
from seglab.engine.optim import ProgressSchedule, build_optimizer
from seglab.engine.sampler import EpochBatchSampler
from seglab.engine.trainer import Trainer, TrainState
from seglab.losses import build_loss
from seglab.models import build_model

NORM = {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}


def matmul_peak(dtype: torch.dtype, n: int = 2048, seconds: float = 2.0) -> float:
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    torch.mm(a, b)
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        torch.mm(a, b)
        count += 1
    return 2 * n**3 * count / (time.perf_counter() - start) / 1e9


def make_trainer(width: int, runtime: Runtime, cfg) -> Trainer:
    torch.manual_seed(0)
    model = runtime.prepare_model(build_model("unet", {"num_classes": 3, "width": width}))
    optimizer = build_optimizer(model, cfg)
    return Trainer(model=model, loss_fn=build_loss("ce+dice", 3, 255), optimizer=optimizer,
                   schedule=ProgressSchedule(optimizer, "constant"), runtime=runtime,
                   preprocess={**NORM, "resize": "stretch", "size": [cfg.imgsz] * 2})


def step_flops(trainer: Trainer, images: torch.Tensor, masks: torch.Tensor) -> float:
    with FlopCounterMode(display=False) as counter:
        trainer.step(images, masks, TrainState(), 0.0)
    return counter.get_total_flops()


def time_steps(trainer: Trainer, images: torch.Tensor, masks: torch.Tensor, steps: int) -> float:
    state = TrainState()
    trainer.step(images, masks, state, 0.0)  # warm-up
    start = time.perf_counter()
    for _ in range(steps):
        trainer.step(images, masks, state, 0.0)
    return images.shape[0] * steps / (time.perf_counter() - start)


def loader_speed(cfg, workers: int, batches: int = 30) -> float:
    data = SegmentationDataset(open_split(cfg, "train"), cfg.imgsz, augment=True, cache=True).preload()
    sampler = EpochBatchSampler(len(data), cfg.batch, seed=0)
    loader = DataLoader(data, batch_sampler=sampler, num_workers=workers, persistent_workers=workers > 0)
    seen, epoch, start = 0, 0, time.perf_counter()
    while seen < batches * cfg.batch:
        epoch += 1
        sampler.set_epoch(epoch)
        for images, _, _ in loader:
            seen += len(images)
    return seen / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--widths", type=int, nargs="+", default=[16, 32])
    parser.add_argument("--imgsz", type=int, default=128)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=4, help="timed steps per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--data", default="sample", help="dataset for the loader measurement")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()

    cfg = make_config(imgsz=args.imgsz, batch=args.batch, data=args.data)
    plain = Runtime(torch.device("cpu"), "fp32", channels_last=False)
    fast = Runtime.from_config("auto", "auto", True)
    peaks = {"fp32_gflops": matmul_peak(torch.float32), "bf16_gflops": matmul_peak(torch.bfloat16)}
    print(f"threads {torch.get_num_threads()}; seglab runtime: {fast.describe()}")
    print(f"torch.mm 2048^2 peak: fp32 {peaks['fp32_gflops']:.0f} GFLOP/s, bf16 {peaks['bf16_gflops']:.0f} GFLOP/s")
    images = torch.randint(0, 256, (args.batch, 3, args.imgsz, args.imgsz), dtype=torch.uint8)
    masks = torch.randint(0, 3, (args.batch, args.imgsz, args.imgsz))
    results = {"machine": peaks, "runtime": fast.describe(), "models": {}}
    for width in args.widths:
        trainers = {"plain": make_trainer(width, plain, cfg), "seglab": make_trainer(width, fast, cfg)}
        gflop_per_img = step_flops(trainers["plain"], images, masks) / args.batch / 1e9
        speeds = {name: [] for name in trainers}
        for _ in range(args.rounds):
            for name, trainer in trainers.items():
                speeds[name].append(time_steps(trainer, images, masks, args.steps))
        med = {name: statistics.median(v) for name, v in speeds.items()}
        peak = peaks["bf16_gflops"] if fast.precision == "bf16" else peaks["fp32_gflops"]
        row = {"train_gflop_per_img": gflop_per_img, "plain_img_s": med["plain"], "seglab_img_s": med["seglab"],
               "speedup": med["seglab"] / med["plain"], "seglab_gflop_s": med["seglab"] * gflop_per_img,
               "fraction_of_matmul_peak": med["seglab"] * gflop_per_img / peak}
        results["models"][f"unet_w{width}"] = row
        print(f"U-Net w{width} b{args.batch} @{args.imgsz}: plain {med['plain']:.1f} img/s, seglab "
              f"{med['seglab']:.1f} img/s -> {row['speedup']:.2f}x; {row['seglab_gflop_s']:.0f} GFLOP/s "
              f"({100 * row['fraction_of_matmul_peak']:.0f}% of the {fast.precision} matmul peak)", flush=True)
    results["loader_img_s"] = {f"workers_{w}": loader_speed(cfg, w) for w in (0, 2)}
    print("loader (cached, augmented): " + ", ".join(f"{k} {v:.0f} img/s" for k, v in results["loader_img_s"].items()))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
