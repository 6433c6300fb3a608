"""Tiled instance inference (seglab/inference/instance_tiling.py): objects lying across tile seams come out
once and whole, one tile equals the whole-image path, and a 3000 x 3000 image stays in bounded memory."""
from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import ndimage
from torch import nn

from seglab.cli import main
from seglab.data.instance.spec import boxes_of
from seglab.data.spec import ClassTable
from seglab.engine.checkpoint import make_checkpoint
from seglab.engine.device import Runtime
from seglab.inference.instance import InstanceOptions, InstancePrediction, InstancePredictor
from seglab.inference.instance_outputs import results_entries
from seglab.inference.instance_tiling import TilingStats, predict_tiled, tile_scale, windows
from seglab.models import build_model
from seglab.tasks.instance.predict import entries_in_chunks

CPU = Runtime(torch.device("cpu"), "fp32", False)
CUT_BONUS = 0.01


class DiscFinder(nn.Module):
    """A deterministic stand-in for an instance model: each connected bright region (> 0.5 after
    normalisation with mean 0, std 1) of its input is one detection, mask probability 1, score its mean
    brightness. Like a real model it sees only its window: a disc crossing the window edge comes out cut,
    and (unlike a good model) scores CUT_BONUS higher, so only the seam rule, not the score, keeps it out."""

    def __init__(self, num_classes: int = 1, score_threshold: float = 0.05, max_detections: int = 100):
        super().__init__()
        self.max_detections = max_detections

    def forward(self, x: torch.Tensor) -> list[dict]:
        out = []
        for image in x:
            bright = image[0].numpy()
            regions, count = ndimage.label(bright > 0.5)
            masks = regions[None] == np.arange(1, count + 1)[:, None, None]
            scores = ndimage.mean(bright, regions, np.arange(1, count + 1)) if count else np.zeros(0)
            edge = np.zeros(bright.shape, bool)
            edge[[0, -1], :] = edge[:, [0, -1]] = True
            scores = scores + CUT_BONUS * np.asarray([(edge & m).any() for m in masks], bool)
            out.append({"scores": torch.as_tensor(np.asarray(scores), dtype=torch.float32),
                        "labels": torch.ones(count, dtype=torch.int64), "boxes": torch.from_numpy(boxes_of(masks)),
                        "masks": torch.from_numpy(masks[:, None].astype(np.float32))})
        return out


def metadata(size: int) -> dict:
    return {"classes": ClassTable(["disc"], [(255, 0, 0)]),
            "preprocess": {"mean": [0.0] * 3, "std": [1.0] * 3, "resize": "longer_side", "size": size}}


def untrained_checkpoint(path: Path) -> Path:
    torch.manual_seed(0)
    args = {"num_classes": 1, "encoder": "resnet18"}
    model = build_model("yolo_seg", args)
    preprocess = {"mean": list(model.normalization["mean"]), "std": list(model.normalization["std"]),
                  "resize": "longer_side", "size": 64}
    ckpt = make_checkpoint(model, {"name": "yolo_seg", "args": args}, ClassTable(["thing"], [(255, 0, 0)]),
                           preprocess, {}, 0, {}, task="instance", category_ids=[1])
    torch.save(ckpt, path)
    return path


def disc_predictor(size: int, **options) -> InstancePredictor:
    return InstancePredictor(DiscFinder(), CPU, InstanceOptions(**options), metadata(size))


def draw_discs(height: int, width: int, discs: list[tuple[int, int, int]]) -> tuple[np.ndarray, list]:
    """RGB image with bright discs (cy, cx, r) of distinct brightness on a dark ground, and each disc as
    (its box as slices, its mask in that box)."""
    image = np.full((height, width, 3), 20, np.uint8)
    truth = []
    for k, (cy, cx, r) in enumerate(discs):
        box = np.s_[max(cy - r, 0):min(cy + r + 1, height), max(cx - r, 0):min(cx + r + 1, width)]
        yy, xx = np.mgrid[box]
        mask = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
        image[box][mask] = round(255 * brightness(k))
        truth.append((box, mask))
    return image, truth


def matches(ids: np.ndarray, truth: list) -> list[tuple[int, float]]:
    """For each true disc: (the number of predicted instances it touches, IoU with the best one)."""
    areas = np.bincount(ids.ravel())
    found = []
    for box, mask in truth:
        touched, inter = np.unique(ids[box][mask], return_counts=True)
        ious = [n / (mask.sum() + areas[i] - n) for i, n in zip(touched, inter) if i]
        found.append((len(ious), max(ious, default=0.0)))
    return found


# 160 x 160 with tiles of 64 overlapping by 0.25: tile starts 0, 48, 96 on both axes; the overlaps are
# the bands [48, 64) and [96, 112). Each disc below sits across a seam in its own way.
SEAM_DISCS = [
    (20, 56, 6),    # inside the first vertical overlap band: whole in two tiles (a duplicate)
    (20, 100, 6),   # across x = 96, the left edge of the third tile column: cut there, whole in the second
    (76, 64, 6),    # across x = 64, the right edge of the first column: cut there, whole in the second
    (56, 130, 6),   # across the horizontal seams only
    (56, 56, 6),    # in the square all four top-left tiles share: whole in four tiles
    (140, 56, 13),  # 27 px wide, wider than the 16 px overlap: cut in both columns that see it (a union)
    (104, 104, 13),  # the same at a corner: cut in four tiles, merged into one
    (136, 136, 8),  # near no inner edge but the last tiles': a plain object
]
CUT_SOMEWHERE = [1, 2, 5, 6]  # the discs some tile sees cut
SEEN_WHOLE_NOWHERE = [5, 6]


def brightness(k: int) -> float:
    return (150 + (k * 37) % 100) / 255


def test_objects_across_tile_seams_come_out_once_and_whole():
    image, truth = draw_discs(160, 160, SEAM_DISCS)
    stats = TilingStats()
    prediction = predict_tiled(image, disc_predictor(64).detect, 64, 0.25, stats=stats)
    assert [w[:2] for w in stats.windows] == [(y, x) for y in (0, 48, 96) for x in (0, 48, 96)]
    assert stats.pieces > len(SEAM_DISCS)  # the seams did produce duplicates and cut pieces
    found = matches(prediction.ids, truth)
    assert len(prediction) == len(SEAM_DISCS)
    assert all(count == 1 and iou > 0.9 for count, iou in found), found
    # a whole view wins over better-scored cut ones; a union keeps its best piece's score
    for k, (box, mask) in enumerate(truth):
        instance = np.bincount(prediction.ids[box][mask]).argmax()
        expected = brightness(k) + (CUT_BONUS if k in SEEN_WHOLE_NOWHERE else 0)
        assert prediction.scores[instance - 1] == pytest.approx(expected, abs=1e-4), k


def test_without_merging_the_seams_would_cut_and_duplicate_objects():
    """The negative control of the test above: with a match threshold no pair can pass, every seam disc
    comes out more than once or cut, so the test above does measure the merging."""
    image, truth = draw_discs(160, 160, SEAM_DISCS)
    prediction = predict_tiled(image, disc_predictor(64).detect, 64, 0.25, threshold=1.0)
    broken = [k for k, (count, iou) in enumerate(matches(prediction.ids, truth)) if count != 1 or iou <= 0.9]
    assert broken == CUT_SOMEWHERE


class SoftBlobs(nn.Module):
    """Soft, overlapping masks that depend on the input: a smoothed brightness map thresholded at eight
    levels, each inside its own rectangle of the window; scores from the masks' mean probability."""

    def __init__(self, num_classes: int = 2, score_threshold: float = 0.05, max_detections: int = 100):
        super().__init__()

    def forward(self, x: torch.Tensor) -> list[dict]:
        out = []
        for image in x:
            _, h, w = image.shape
            base = torch.nn.functional.avg_pool2d(image.mean(0)[None, None], 7, 1, 3, count_include_pad=False)[0, 0]
            masks, scores = [], []
            for k in range(8):
                box = torch.zeros(h, w)
                box[k * h // 16:h - (7 - k) * h // 24, (7 - k) * w // 20:w - k * w // 18] = 1
                mask = torch.sigmoid(12 * (base - 0.35 - 0.03 * k)) * box
                masks.append(mask)
                scores.append(0.2 + mask.mean())
            out.append({"scores": torch.stack(scores), "labels": torch.arange(8) % 2 + 1,
                        "boxes": torch.from_numpy(boxes_of(torch.stack(masks).numpy() >= 0.5)),
                        "masks": torch.stack(masks)[:, None]})
        return out


@pytest.mark.parametrize("max_covered", [1.0, 0.5])
def test_one_tile_equals_the_whole_image_path(max_covered):
    """An image whose longer side is the training size fits one tile at native scale: tiled and untiled give
    the same ids, scores and labels (soft overlapping masks, so painting order, resizing and the rule that
    drops covered detections matter)."""
    image = np.asarray(Image.fromarray(np.random.default_rng(0).integers(0, 256, (16, 12, 3), np.uint8))
                       .resize((48, 64), Image.BICUBIC))
    options = {"max_covered": max_covered}
    whole = InstancePredictor(SoftBlobs(), CPU, InstanceOptions(mode="stretch", **options), metadata(64)).predict(image)
    tiled_predictor = InstancePredictor(SoftBlobs(), CPU, InstanceOptions(mode="tile", **options), metadata(64))
    assert tiled_predictor.mode_for(64, 48) == "tile"
    stats = TilingStats()
    tiled = predict_tiled(image, tiled_predictor.detect, 64, 0.25, stats=stats, **options)
    assert stats.tiles == 1 and len(whole) >= (4 if max_covered == 1.0 else 2)
    assert np.array_equal(tiled.ids, whole.ids)
    assert np.array_equal(tiled.scores, whole.scores) and np.array_equal(tiled.labels, whole.labels)
    assert np.array_equal(tiled_predictor.predict(image).ids, whole.ids)


def test_auto_mode_tiles_only_images_beyond_auto_tile_training_sizes():
    predictor = disc_predictor(64, mode="auto", auto_tile=2.0)
    assert predictor.mode_for(128, 100) == "stretch" and predictor.mode_for(129, 20) == "tile"
    assert disc_predictor(64, mode="stretch").mode_for(10_000, 10_000) == "stretch"
    image, truth = draw_discs(160, 160, SEAM_DISCS)
    found = matches(predictor.predict(image).ids, truth)  # 160 > 2 x 64: tiled at native scale
    assert all(count == 1 and iou > 0.9 for count, iou in found), found


def test_a_recorded_scale_runs_tiles_at_that_scale():
    """preprocess native_scale=2: tiles of 64 view pixels span 32 source pixels; the discs still come out whole."""
    image, truth = draw_discs(96, 96, [(20, 30, 5), (48, 48, 6), (70, 20, 4)])
    seen = []

    def detect(view):
        seen.append(tuple(view.shape[1:]))
        return disc_predictor(64).detect(view)

    prediction = predict_tiled(image, detect, 64, 0.25, scale=tile_scale({"native_scale": 2.0}))
    assert set(seen) == {(64, 64)} and len(seen) == len(windows(96, 96, 32, 0.25))
    assert all(count == 1 and iou > 0.8 for count, iou in matches(prediction.ids, truth))
    with pytest.raises(ValueError, match="native_scale"):
        tile_scale({"native_scale": 0})


@pytest.fixture
def one_thread():
    """256 tiles of tiny tensor ops: on busy shared cores, waking torch's thread pool per op costs more than the op."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_a_3000_pixel_image_is_tiled_in_bounded_memory(one_thread):
    rng = np.random.default_rng(1)
    centres = [(y, x) for y in range(90, 2950, 180) for x in range(90, 2950, 180)]
    discs = [(y + int(rng.integers(-40, 40)), x + int(rng.integers(-40, 40)), int(rng.integers(8, 20)))
             for y, x in centres]
    image, truth = draw_discs(3000, 3000, discs)
    stats = TilingStats()
    tracemalloc.start()
    prediction = predict_tiled(image, disc_predictor(256).detect, 256, 0.25, stats=stats)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert stats.tiles == 16 * 16 and stats.pieces > len(discs)
    # the id map (36 MB) plus little: one full-image mask per detection would be ~9 MB each, 2.5 GB in all
    assert peak < prediction.ids.nbytes + 30e6, peak
    assert stats.piece_bytes < 2 * sum(4 * r * r for _, _, r in discs) * stats.pieces / len(discs)
    assert len(prediction) == len(discs)
    found = matches(prediction.ids, truth)
    assert all(count == 1 and iou > 0.9 for count, iou in found)


def test_results_entries_in_chunks_are_the_entries_of_the_whole_prediction():
    ids = np.zeros((20, 30), np.int32)
    for k in range(1, 8):
        ids[2 * k:2 * k + 2, 3 * k:3 * k + 4] = k
    prediction = InstancePrediction(ids, np.linspace(0.9, 0.3, 7).astype(np.float32), np.arange(7) % 2)
    whole = results_entries(3, "a.png", prediction, [1, 7], 0.5)
    assert entries_in_chunks(3, "a.png", prediction, [1, 7], 0.5, chunk=3) == whole
    assert [e["instance_id"] for e in whole] == [1, 2, 3, 4, 5, 0, 0]


def test_predict_cli_tiles_a_large_image_and_writes_matching_outputs(tmp_path, one_thread, capsys):
    from pycocotools import mask as coco_mask

    model = untrained_checkpoint(tmp_path / "untrained.pt")
    image, _ = draw_discs(150, 100, SEAM_DISCS[:3])  # an untrained model: what it finds does not matter
    Image.fromarray(image).save(tmp_path / "large.png")
    out = tmp_path / "pred"
    assert main(["predict", f"model={model}", f"source={tmp_path / 'large.png'}", f"out={out}", "mode=tile",
                 "overlap=0.5", "score_threshold=0", "min_score=0", "max_detections=20", "precision=fp32"]) == 0
    assert "mode=tile (tiles of 64 overlapping by 0.5)" in capsys.readouterr().out
    ids = np.asarray(Image.open(out / "large.png"))
    entries = json.loads((out / "predictions.json").read_text())
    assert ids.shape == (150, 100) and ids.max() == len(entries)
    for entry in entries:
        assert np.array_equal(coco_mask.decode(entry["segmentation"]).astype(bool), ids == entry["instance_id"])
