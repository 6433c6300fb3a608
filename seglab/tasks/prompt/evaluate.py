"""The click benchmark through `seglab.prompt.Predictor`, for any backend (seglab's click model, SAM, ...).

Every object gets a simulated user (seglab/metrics/clicks.py: RITM's clicker, `run_click_session`):
the first click with multimask output (the candidate with the best predicted score is kept), every
later click with all clicks so far, single-mask output and the previous low-resolution logits as
`mask_input`. A session stops at `stop_iou` (the highest NoC threshold, RITM's convention: later
mIoU@k keep the last IoU) or after `max_clicks`. IoU is taken at each image's own size, the
ignored pixels (Pet's trimap border, crowd regions) left out. Reported per dataset: NoC@85/90,
NoF@85/90, mIoU@1/3/5, the mIoU curve, per-object IoUs and clicks, and the timings: set_image
(embedding) seconds and per-click decode milliseconds.
"""

from __future__ import annotations

import time
from typing import Iterable

import numpy as np

from seglab.data.io import read_image
from seglab.data.prompt import ObjectSplit
from seglab.metrics.clicks import MIOU_CLICKS, NOC_THRESHOLDS, ClickEvaluator, run_click_session

RESULT_KEYS = ("noc_85", "noc_90", "nof_85", "nof_90", "miou_at_1", "miou_at_3", "miou_at_5")


def chosen_objects(count: int, per_image: int) -> list[int]:
    """Object ids 1..count scored for one image: all, or `per_image` spread evenly (largest first)."""
    ids = list(range(1, count + 1))
    if per_image <= 0 or count <= per_image:
        return ids
    return [ids[round(i * (count - 1) / max(1, per_image - 1))] for i in range(per_image)]


class Timer:
    def __init__(self):
        self.embed: list[float] = []
        self.click: list[float] = []

    def summary(self) -> dict:
        def stats(values, scale):
            return {"mean": float(np.mean(values)) * scale, "median": float(np.median(values)) * scale,
                    "count": len(values)} if values else None
        return {"set_image_s": stats(self.embed, 1.0), "click_ms": stats(self.click, 1000.0)}


def session(predictor, gt: np.ndarray, ignore: np.ndarray, max_clicks: int, stop_iou: float | None,
            timer: Timer) -> dict:
    """One object's click session on the predictor's current image; {"clicks", "ious"}."""

    def predict(clicks, previous):
        coords = np.array([[c.x, c.y] for c in clicks], np.float32)
        labels = np.array([int(c.is_positive) for c in clicks], np.int64)
        first = previous is None
        start = time.perf_counter()
        masks, scores, low_res = predictor.predict(point_coords=coords, point_labels=labels,
                                                   mask_input=None if first else previous,
                                                   multimask_output=first)
        timer.click.append(time.perf_counter() - start)
        best = int(np.argmax(scores))
        return masks[best], low_res[best][None]

    return run_click_session(predict, gt, max_clicks, ignore=ignore, stop_iou=stop_iou)


def evaluate_split(predictor, split: ObjectSplit, max_clicks: int = 20, per_image: int = 0,
                   images: Iterable[int] | None = None) -> dict:
    """The click metrics of `predictor` (a seglab.prompt.Predictor) on the objects of `split`."""
    evaluator = ClickEvaluator(max_clicks, miou_clicks=tuple(k for k in MIOU_CLICKS if k <= max_clicks))
    timer = Timer()
    stop = max(NOC_THRESHOLDS)
    records = []
    for index in (range(len(split.images)) if images is None else images):
        item = split.images[index]
        objects = item.load()
        ids = chosen_objects(objects.count, per_image)
        if not ids:
            continue
        image = np.asarray(read_image(item.image))
        start = time.perf_counter()
        predictor.set_image(image)
        timer.embed.append(time.perf_counter() - start)
        for k in ids:
            result = session(predictor, objects.mask(k), objects.ignore, max_clicks, stop, timer)
            object_id = f"{item.name}#{k}"
            evaluator.process({"id": object_id}, result)
            records.append({"id": object_id, "clicks": [[c.x, c.y, int(c.is_positive)] for c in result["clicks"]]})
    metrics = evaluator.evaluate()
    for row, record in zip(metrics["per_object"], records):
        row["clicks"] = record["clicks"]
    return {"data": str(split.root), "format": split.format, "split": split.name, **metrics,
            "timing": timer.summary()}


def combined(results: list[dict]) -> dict:
    """Object-weighted means of the headline numbers over several datasets (NoF summed)."""
    total = sum(r["num_objects"] for r in results)
    out = {"num_objects": total}
    for key in RESULT_KEYS:
        values = [(r[key], r["num_objects"]) for r in results if r.get(key) is not None]
        if not values or not total:
            out[key] = None
        elif key.startswith("nof"):
            out[key] = int(sum(v for v, _ in values))
        else:
            out[key] = float(sum(v * n for v, n in values) / max(1, sum(n for _, n in values)))
    return out


def format_table(results: list[dict]) -> str:
    lines = ["dataset                                   objects  NoC@85  NoC@90  NoF@85  NoF@90  mIoU@1  mIoU@3  "
             "mIoU@5  set_image  click"]
    for r in results:
        timing = r["timing"]
        embed = f"{timing['set_image_s']['median'] * 1000:7.0f}ms" if timing["set_image_s"] else "      -"
        click = f"{timing['click_ms']['median']:5.1f}ms" if timing["click_ms"] else "    -"
        cells = [f"{r.get(k):6.2f}" if isinstance(r.get(k), float) else f"{r.get(k, '-')!s:>6}" for k in RESULT_KEYS]
        lines.append(f"{(r['data'] + ' ' + r['split'])[-40:]:40s}  {r['num_objects']:7d}  " + "  ".join(cells)
                     + f"  {embed}  {click}")
    return "\n".join(lines)
