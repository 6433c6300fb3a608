"""Eval latency of the instance-segmentation models: one image, batch 1, eager fp32, random weights.

Each model is built with its default settings (or a named preset), warmed up once, then timed
`--repeats` times; the median is printed with the spread. The load average before and after is
printed too: on a shared machine it says how far to trust the numbers. Weights are random, so the
number of detections is what a fresh model gives (all up to the cap, scores near 0.5), and it
matters: Mask R-CNN runs its mask head on every detection and pastes each mask at full size.
`--max-detections` and `--score-threshold` fix how many survive (1.0: none, the cost without masks).

    python benchmarks/instance_latency.py                         # maskrcnn on efficientnet_lite0, resnet18
    python benchmarks/instance_latency.py --max-detections 20      # 20 masks per image
    python benchmarks/instance_latency.py --score-threshold 1.0    # no detection survives: no mask work
    python benchmarks/instance_latency.py --imgsz 256 --preset nuclei --json out.json

To add a model: an entry in MODELS (name -> a function returning the model in eval mode).
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import statistics
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from seglab.benchmark.timing import machine
from seglab.models.instance.maskrcnn import NUCLEI, MaskRCNN
from seglab.models.instance.onestage import OneStageSeg

PRESETS = {"default": {}, "nuclei": NUCLEI}


def maskrcnn(encoder: str, options: dict) -> torch.nn.Module:
    return MaskRCNN(num_classes=1, encoder=encoder, **options)


def yolo_seg(encoder: str, options: dict) -> torch.nn.Module:
    """The one-stage model; options it does not take (Mask R-CNN's presets) are left out."""
    known = inspect.signature(OneStageSeg).parameters
    return OneStageSeg(num_classes=1, encoder=encoder, **{k: v for k, v in options.items() if k in known})


MODELS = {"maskrcnn": maskrcnn, "yolo_seg": yolo_seg}


def eval_gflops(model: torch.nn.Module, image: torch.Tensor) -> float:
    """Convolutions and matmuls only (RoIAlign, NMS and mask pasting are not counted)."""
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        model(image)
    return counter.get_total_flops() / 1e9


def parse_option(text: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep:
        raise SystemExit(f"--set {text}: expected KEY=VALUE (VALUE in JSON, e.g. fpn_channels=128)")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def time_eval(model: torch.nn.Module, image: torch.Tensor, repeats: int) -> tuple[list[float], int]:
    with torch.inference_mode():
        detections = len(model(image)[0]["scores"])  # warm-up
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            model(image)
            times.append(time.perf_counter() - start)
    return times, detections


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--encoders", nargs="+", default=["efficientnet_lite0", "resnet18"])
    parser.add_argument("--imgsz", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--preset", default="default", choices=list(PRESETS))
    parser.add_argument("--score-threshold", type=float, default=None, help="override the model's default")
    parser.add_argument("--max-detections", type=int, default=None, help="override the model's default")
    parser.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE",
                        help="more constructor arguments in JSON, e.g. fpn_channels=128 'aspect_ratios=[1.0]'")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    about = machine()
    print(f"cpu: {about['cpu']}; isa: {', '.join(about['isa']) or 'none of avx2/avx512/amx'}; "
          f"native bf16: {about['native_bf16']}; threads {about['threads']}; torch {about['torch']}")
    options = dict(PRESETS[args.preset])
    if args.score_threshold is not None:
        options["score_threshold"] = args.score_threshold
    if args.max_detections is not None:
        options["max_detections"] = args.max_detections
    options.update(parse_option(text) for text in args.set)
    torch.manual_seed(0)
    image = torch.randn(1, 3, args.imgsz, args.imgsz)
    results = {"machine": about, "imgsz": args.imgsz, "preset": args.preset, "options": options,
               "load_before": os.getloadavg(), "models": {}}
    for name in args.models:
        for encoder in args.encoders:
            torch.manual_seed(0)
            model = MODELS[name](encoder, options).eval()
            times, detections = time_eval(model, image, args.repeats)
            gflops = eval_gflops(model, image)
            ms = [1000 * t for t in times]
            row = {"median_ms": statistics.median(ms), "min_ms": min(ms), "max_ms": max(ms), "detections": detections,
                   "gflops": gflops, "parameters_m": sum(p.numel() for p in model.parameters()) / 1e6}
            results["models"][f"{name}/{encoder}"] = row
            overrides = [f"{k}={v}" for k, v in options.items() if k not in PRESETS[args.preset]]
            setting = " ".join([args.preset, *overrides])
            print(f"{name} on {encoder} @{args.imgsz} ({setting}): median {row['median_ms']:.0f} ms "
                  f"(min {row['min_ms']:.0f}, max {row['max_ms']:.0f}; {args.repeats} runs), "
                  f"{detections} detections, {gflops:.0f} GFLOP, {row['parameters_m']:.1f} M parameters", flush=True)
    results["load_after"] = os.getloadavg()
    print(f"load average before {results['load_before'][0]:.1f}, after {results['load_after'][0]:.1f} "
          f"({os.cpu_count()} cores; above that, other work shared the CPU)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
