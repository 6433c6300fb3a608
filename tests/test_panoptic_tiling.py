"""Tiled panoptic inference (seglab/inference/panoptic_tiling.py): things lying across tile seams come out once and
whole, stuff is one segment per class taken from the nearest tile, void stays void, one tile equals the untiled
path, a recorded native_scale sets the tiles' scale, a 3000 x 3000 image stays in bounded memory, and predict / val
take mode=tile (a fusion refuses it)."""
from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import ndimage
from test_instance_tiling import (CUT_BONUS, CUT_SOMEWHERE, SEAM_DISCS, SEEN_WHOLE_NOWHERE, brightness,  # noqa: F401
                                  draw_discs, matches, one_thread)
from torch import nn

from seglab.cli import main
from seglab.data.spec import ClassTable
from seglab.engine.checkpoint import make_checkpoint
from seglab.engine.device import Runtime
from seglab.inference.instance_tiling import scaled_view
from seglab.inference.panoptic import PanopticPredictor, at_size
from seglab.inference.panoptic_tiling import PanopticTilingStats, TileOptions, predict_tiled
from seglab.metrics.panoptic import rgb_to_id
from seglab.models import build_model

CPU = Runtime(torch.device("cpu"), "fp32", False)
CLASSES = ClassTable(["ground", "disc", "water"], [(90, 60, 30), (255, 0, 0), (0, 90, 255)])
IS_THING = [False, True, False]
GROUND, DISC, WATER = 0, 1, 2
WATER_LEVEL, VOID_LEVEL = 120, 0  # green / blue values of the background that the fake model reads


class DiscPanoptic(nn.Module):
    """A deterministic stand-in for a panoptic model, sees only its window: each connected bright region (red > 0.5
    after normalisation with mean 0, std 1) is a disc (thing), scored by its mean brightness plus CUT_BONUS when it
    touches the window's edge (so only the seam rule, not the score, keeps a cut view out); the rest is water
    (green > 0.3), void (blue < 0.02) or ground, one stuff segment per class, scored by its mean blue value."""

    multiple = 1

    def forward(self, x: torch.Tensor) -> list[dict]:
        out = []
        for image in x:
            red, green, blue = image.numpy()
            regions, count = ndimage.label(red > 0.5)
            ids = regions.astype(np.int64)
            scores = ndimage.mean(red, regions, np.arange(1, count + 1)) if count else np.zeros(0)
            edge = np.zeros(red.shape, bool)
            edge[[0, -1], :] = edge[:, [0, -1]] = True
            touches = np.zeros(count + 1, bool)
            touches[np.unique(regions[edge])] = True
            segments = [{"id": k, "category_id": DISC, "score": float(s + CUT_BONUS * touches[k]), "iscrowd": 0}
                        for k, s in enumerate(scores, start=1)]
            background = regions == 0
            water = background & (green > 0.3)
            void = background & ~water & (blue < 0.02)
            for category, where in ((WATER, water), (GROUND, background & ~water & ~void)):
                if where.any():
                    segments.append({"id": len(segments) + 1, "category_id": category,
                                     "score": float(blue[where].mean()), "iscrowd": 0})
                    ids[where] = len(segments)
            out.append({"segment_ids": torch.from_numpy(ids), "segments": segments})
        return out


def metadata(size: int, **preprocess) -> dict:
    return {"classes": CLASSES, "is_thing": IS_THING,
            "preprocess": {"mean": [0.0] * 3, "std": [1.0] * 3, "resize": "longer_side", "size": size, **preprocess}}


def predictor(size: int, mode: str = "tile", **preprocess) -> PanopticPredictor:
    return PanopticPredictor(DiscPanoptic(), CPU, metadata(size, **preprocess), TileOptions(mode=mode))


def scene(height: int, width: int, discs: list, water_from: int, void_rows: tuple[int, int] | None = None):
    """Discs on a background that is water right of column `water_from`, ground left of it, void (no class) in
    `void_rows` of the ground; returns the image, the discs' truth and the stuff truth {class: mask}."""
    image, truth = draw_discs(height, width, discs)
    background = image[..., 0] == 20
    rng = np.random.default_rng(height + width)
    image[..., 2] = np.where(background, rng.integers(10, 60, (height, width)), image[..., 2])  # stuff scores vary
    water = background & (np.arange(width) >= water_from)[None]
    image[..., 1][water] = WATER_LEVEL
    void = np.zeros((height, width), bool)
    if void_rows:
        void[void_rows[0]:void_rows[1]] = background[void_rows[0]:void_rows[1]] & ~water[void_rows[0]:void_rows[1]]
        image[..., 2][void] = VOID_LEVEL
    return image, truth, {GROUND: background & ~water & ~void, WATER: water}


def things_only(prediction) -> np.ndarray:
    things = [s["id"] for s in prediction.segments if IS_THING[s["category_id"]]]
    return np.where(np.isin(prediction.segment_ids, things), prediction.segment_ids, 0)


def stuff_masks(prediction) -> dict[int, list[np.ndarray]]:
    out: dict[int, list[np.ndarray]] = {}
    for s in prediction.segments:
        if not IS_THING[s["category_id"]]:
            out.setdefault(s["category_id"], []).append(prediction.segment_ids == s["id"])
    return out


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return (a & b).sum() / max((a | b).sum(), 1)


# 160 x 160, tiles of 64 overlapping by 0.25 (starts 0, 48, 96): the seams of test_instance_tiling's discs;
# water right of x = 100 (a stuff border inside the last tile column), void rows 30-34 of the ground (across the
# column seams).
def test_things_across_seams_come_out_once_and_whole_stuff_once_per_class():
    image, truth, stuff = scene(160, 160, SEAM_DISCS, water_from=100, void_rows=(30, 34))
    stats = PanopticTilingStats()
    p = predictor(64)
    ids, segments, size = predict_tiled(image, p.predict_view, IS_THING, 64, 0.25, stats=stats)
    prediction = at_size(ids, segments, size)
    assert stats.tiles == 9 and stats.pieces > len(SEAM_DISCS)  # the seams did cut and duplicate discs
    found = matches(things_only(prediction), truth)
    assert sum(IS_THING[s["category_id"]] for s in prediction.segments) == len(SEAM_DISCS)
    assert all(count == 1 and overlap > 0.9 for count, overlap in found), found
    for k, (box, mask) in enumerate(truth):  # a whole view wins over better-scored cut ones
        segment = np.bincount(prediction.segment_ids[box][mask]).argmax()
        expected = brightness(k) + (CUT_BONUS if k in SEEN_WHOLE_NOWHERE else 0)
        assert prediction.segments[segment - 1]["score"] == pytest.approx(expected, abs=1e-4), k
    masks = stuff_masks(prediction)
    assert sorted(masks) == [GROUND, WATER] and all(len(m) == 1 for m in masks.values())  # one per class
    for category, mask in masks.items():
        assert iou(mask[0], stuff[category]) > 0.99, category
    void = ~(stuff[GROUND] | stuff[WATER]) & (things_only(prediction) == 0)
    assert np.array_equal(prediction.segment_ids == 0, void)  # void stays void, and only there
    # the stuff score: the tiles' scores (blue's mean over the class in the tile) weighted by the pixels each gave
    for category in (GROUND, WATER):
        score = next(s["score"] for s in prediction.segments if s["category_id"] == category)
        assert score == pytest.approx(image[..., 2][masks[category][0]].mean() / 255, abs=2e-3)


def test_without_seam_matching_the_cut_discs_split():
    """The negative control: with a match threshold no pair can pass, every disc some tile cuts comes out split."""
    image, truth, _ = scene(160, 160, SEAM_DISCS, water_from=100)
    p = predictor(64)
    prediction = at_size(*predict_tiled(image, p.predict_view, IS_THING, 64, 0.25, threshold=1.0))
    broken = [k for k, (count, overlap) in enumerate(matches(things_only(prediction), truth))
              if count != 1 or overlap <= 0.9]
    assert broken == CUT_SOMEWHERE


def test_one_tile_equals_the_untiled_path():
    """An image whose longer side is the training size is one tile at native scale: the same ids and the same
    segments in the same order as the whole-image path (discs at the image border are not cut)."""
    discs = [(10, 8, 5), (30, 30, 7), (50, 44, 4), (60, 40, 3), (0, 20, 4)]
    image, _, _ = scene(64, 48, discs, water_from=30, void_rows=(20, 23))
    whole = predictor(64, mode="stretch").predict(image)
    tiled_predictor = predictor(64, mode="tile")
    assert tiled_predictor.options.mode_for(64, 64, 48) == "tile"
    stats = PanopticTilingStats()
    tiled = at_size(*predict_tiled(image, tiled_predictor.predict_view, IS_THING, 64, 0.25, stats=stats))
    assert stats.tiles == 1 and len(whole.segments) == len(discs) + 2
    assert np.array_equal(tiled.segment_ids, whole.segment_ids)
    def labels(prediction):
        return [(s["id"], s["category_id"], s["iscrowd"]) for s in prediction.segments]

    assert labels(tiled) == labels(whole)
    assert [s["score"] for s in tiled.segments] == pytest.approx([s["score"] for s in whole.segments], rel=1e-6)
    assert np.array_equal(tiled_predictor.predict(image).segment_ids, whole.segment_ids)


def test_auto_mode_and_a_recorded_native_scale():
    auto = PanopticPredictor(DiscPanoptic(), CPU, metadata(64), TileOptions(mode="auto", auto_tile=2.0))
    assert auto.options.mode_for(64, 128, 100) == "stretch" and auto.options.mode_for(64, 129, 20) == "tile"
    assert TileOptions(mode="stretch").mode_for(64, 10_000, 10_000) == "stretch"
    assert auto.scale == 1.0  # no native_scale recorded (older checkpoints): native resolution
    image, truth, _ = scene(160, 160, SEAM_DISCS, water_from=100)
    found = matches(things_only(auto.predict(image)), truth)  # 160 > 2 x 64: tiled
    assert all(count == 1 and overlap > 0.9 for count, overlap in found), found
    # native_scale=2: tiles of 64 view pixels span 32 source pixels, the model sees views of 64
    image, truth, _ = scene(96, 96, [(20, 30, 5), (48, 48, 6), (70, 20, 4)], water_from=60)
    scaled = predictor(64, native_scale=2.0)
    seen = []

    def predict_view(view, size):
        seen.append(tuple(view.shape[1:]))
        return scaled.predict_view(view, size)

    assert scaled.scale == 2.0
    prediction = at_size(*predict_tiled(image, predict_view, IS_THING, 64, 0.25, scale=scaled.scale))
    assert set(seen) == {(64, 64)} and len(seen) == 16
    # against the model on the whole image at the same scale (it is local: only the seams could differ)
    reference = scaled.predict_view(scaled_view(image, 2.0), image.shape[:2])
    reference_things = [(np.s_[:, :], reference.segment_ids == s["id"]) for s in reference.segments
                        if IS_THING[s["category_id"]]]
    assert len(reference_things) == len(truth)
    assert all(count == 1 and overlap > 0.95 for count, overlap in matches(things_only(prediction), reference_things))
    with pytest.raises(ValueError, match="native_scale"):
        predictor(64, native_scale=-1.0)


@pytest.mark.usefixtures("one_thread")  # 256 small forwards on busy shared cores
def test_a_3000_pixel_image_is_tiled_in_bounded_memory():
    rng = np.random.default_rng(1)
    centres = [(y, x) for y in range(90, 2950, 180) for x in range(90, 2950, 180)]
    discs = [(y + int(rng.integers(-40, 40)), x + int(rng.integers(-40, 40)), int(rng.integers(8, 20)))
             for y, x in centres]
    image, truth, stuff = scene(3000, 3000, discs, water_from=1700)
    p = predictor(256)
    stats = PanopticTilingStats()
    tracemalloc.start()
    ids, segments, size = predict_tiled(image, p.predict_view, IS_THING, 256, 0.25, stats=stats)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert stats.tiles == 16 * 16 and stats.pieces > len(discs)
    # the int32 code map and the int64 ids (108 MB) plus little; a full-image mask per segment or a full-image
    # map per tile would be 9 MB each, several GB in all
    assert peak < 12 * 3000 * 3000 + 30e6, peak
    assert stats.piece_bytes < 2 * sum(4 * r * r for _, _, r in discs) * stats.pieces / len(discs)
    prediction = at_size(ids, segments, size)
    assert sum(IS_THING[s["category_id"]] for s in prediction.segments) == len(discs)
    assert all(count == 1 and overlap > 0.9 for count, overlap in matches(things_only(prediction), truth))
    masks = stuff_masks(prediction)
    assert all(len(masks[c]) == 1 and iou(masks[c][0], stuff[c]) > 0.99 for c in (GROUND, WATER))


def untrained_checkpoint(path: Path) -> Path:
    torch.manual_seed(0)
    args = {"num_classes": 2, "is_thing": [False, True], "encoder": "resnet18", "decoder_channels": 16,
            "head_width": 8, "stuff_min_area": 1, "min_area": 1}
    model = build_model("panoptic_deeplab", args)
    preprocess = {"mean": list(model.normalization["mean"]), "std": list(model.normalization["std"]),
                  "resize": "longer_side", "size": 64}
    ckpt = make_checkpoint(model, {"name": "panoptic_deeplab", "args": args},
                           ClassTable(["background", "nucleus"], [(0, 0, 0), (255, 0, 0)]), preprocess, {}, 0, {},
                           task="panoptic", is_thing=[False, True], category_ids=[0, 1])
    torch.save(ckpt, path)
    return path


@pytest.mark.usefixtures("one_thread")
def test_predict_cli_tiles_a_large_image_and_a_fusion_refuses_tiling(tmp_path, capsys):
    model = untrained_checkpoint(tmp_path / "untrained.pt")
    image, _, _ = scene(150, 100, SEAM_DISCS[:3], water_from=60)  # an untrained model: what it finds does not matter
    Image.fromarray(image).save(tmp_path / "large.png")
    out = tmp_path / "pred"
    assert main(["predict", f"model={model}", f"source={tmp_path / 'large.png'}", f"out={out}", "mode=tile",
                 "overlap=0.5", "precision=fp32"]) == 0
    assert "mode=tile (tiles of 64 overlapping by 0.5)" in capsys.readouterr().out
    ids = rgb_to_id(np.asarray(Image.open(out / "large.png").convert("RGB")))
    info = json.loads((out / "predictions.json").read_text())["annotations"][0]["segments_info"]
    assert ids.shape == (150, 100) and len(info) > 0
    assert set(np.unique(ids).tolist()) - {0} == {s["id"] for s in info}
    assert all(s["area"] == int((ids == s["id"]).sum()) for s in info)
    assert main(["predict", "task=panoptic", f"semantic_model={model}", f"instance_model={model}",
                 f"source={tmp_path / 'large.png'}", f"out={out}", "mode=tile"]) == 1
    assert "mode=tile: a panoptic fusion is not tiled" in capsys.readouterr().err
