"""Mask R-CNN training step on real DSB2018 batches: where the time goes, and what narrower layers buy.

Builds the recipe's model (configs/dsb2018_maskrcnn.yaml: EfficientNet-Lite0 + FPN, small anchors, 500
detections) once per variant (model arguments over the recipe's, e.g. `mask_head_channels=128`), feeds the
same batches (the recipe's data, size and batch; no augmentation) under the recipe's precision, and times
forward + backward + AdamW step, interleaved (a step of every variant, then the next round) so machine noise
hits all alike. Also times the mask branch alone (mask RoIAlign + head + predictor, forward + backward)
through forward hooks, so the share of a step it takes is measured, not estimated. Ratios are against the
first variant of this run.

    python benchmarks/maskrcnn_step.py              # the recipe, mask_head_channels=128, + fpn_channels=128; 4 rounds
    python benchmarks/maskrcnn_step.py --variants "" mask_head_channels=64 --rounds 6 --json out.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from seglab.benchmark.timing import lscpu_summary
from seglab.config import make_config
from seglab.data.instance.dataset import InstanceDataset, collate
from seglab.engine.device import Runtime
from seglab.models import build_model, model_arguments
from seglab.tasks.instance.batch import device_targets, padded_batch
from seglab.tasks.instance.train import instance_split, thing_classes, training_size

RECIPE = "configs/dsb2018_maskrcnn.yaml"


def batches(cfg, count: int) -> list:
    split = instance_split(cfg, "train", False)
    data = InstanceDataset(split, training_size(cfg))
    items = [data[i] for i in range(count * cfg.batch)]
    return [collate(items[i:i + cfg.batch]) for i in range(0, len(items), cfg.batch)], split


class MaskBranchClock:
    """Seconds spent in the mask branch's forward (RoIAlign, head, predictor) and, through a tensor hook on
    its output, in its backward up to the RoIAlign input."""

    def __init__(self, model):
        self.forward = 0.0
        self.backward = 0.0
        heads = model.roi_heads
        heads.mask_roi_pool.register_forward_pre_hook(self._start)
        heads.mask_predictor.register_forward_hook(self._stop)
        heads.mask_roi_pool.register_forward_hook(self._mark_input)

    def _start(self, module, args):
        self._t = time.perf_counter()

    def _stop(self, module, args, output):
        self.forward += time.perf_counter() - self._t
        if output.requires_grad:
            output.register_hook(self._backward_start)
        return output

    def _mark_input(self, module, args, output):
        if output.requires_grad:
            output.register_hook(self._backward_stop)
        return output

    def _backward_start(self, grad):
        self._b = time.perf_counter()
        return grad

    def _backward_stop(self, grad):
        self.backward += time.perf_counter() - self._b
        return grad


def variant_arguments(text: str) -> dict:
    """'mask_head_channels=128,fpn_channels=128' -> {'mask_head_channels': 128, 'fpn_channels': 128}."""
    pairs = dict(part.split("=", 1) for part in text.split(",") if part)
    cfg = make_config(**pairs)  # parsed and range-checked by the key table
    return {name: getattr(cfg, name) for name in pairs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", nargs="+", default=["", "mask_head_channels=128",
                                                          "mask_head_channels=128,fpn_channels=128"],
                        help='model arguments over the recipe\'s, "key=value,key=value" ("" = the recipe)')
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--batches", type=int, default=3, help="distinct batches per round")
    parser.add_argument("--json", default="")
    args = parser.parse_args()
    cfg = make_config(cfg=RECIPE, mode="train")
    runtime = Runtime.from_config("auto", cfg.precision, cfg.channels_last)
    data, split = batches(cfg, args.batches)
    classes = thing_classes(split.classes)
    options = {k: v for k, v in cfg.to_dict().items() if v not in (None, "")}
    variants = {}
    for text in args.variants:
        torch.manual_seed(0)
        model = runtime.prepare_model(build_model("maskrcnn", model_arguments(
            "maskrcnn", classes.num_classes, {**options, **variant_arguments(text)}))).train()
        optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
        variants[text or "the recipe"] = (model, optimizer, MaskBranchClock(model), [], [])
    first = next(iter(variants.values()))[0]
    mean, std = list(first.normalization["mean"]), list(first.normalization["std"])

    def step(model, optimizer, images, targets):
        x = padded_batch(images, mean, std, runtime)
        y = device_targets(targets, tuple(x.shape[-2:]), runtime.device)
        with runtime.autocast():
            loss = sum(v.float() for v in model(x, y).values())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for round_index in range(args.rounds + 1):  # round 0 warms up, not counted
        for model, optimizer, clock, totals, branch in variants.values():
            clock.forward = clock.backward = 0.0
            start = time.perf_counter()
            for images, targets, _ in data:
                step(model, optimizer, images, targets)
            if round_index:
                totals.append((time.perf_counter() - start) / len(data))
                branch.append((clock.forward + clock.backward) / len(data))
    print(lscpu_summary())
    print(f"{RECIPE}: batch {cfg.batch}, longer side {training_size(cfg)}, precision {cfg.precision} on "
          f"{runtime.device}, {args.rounds} rounds x {len(data)} batches, medians")
    base = statistics.median(next(iter(variants.values()))[3])
    rows = []
    for name, (model, _, _, totals, branch) in variants.items():
        step_s, branch_s = statistics.median(totals), statistics.median(branch)
        parameters = sum(p.numel() for p in model.parameters())
        rows.append({"variant": name, "step_s": step_s, "mask_branch_s": branch_s, "parameters": parameters,
                     "mask_branch_share": branch_s / step_s, "speedup_vs_first": base / step_s})
        print(f"{name:42s}: step {step_s:6.2f} s, mask branch {branch_s:6.2f} s ({100 * branch_s / step_s:4.1f} %), "
              f"{parameters / 1e6:5.1f} M parameters, {base / step_s:4.2f}x the first")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": lscpu_summary(), "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
