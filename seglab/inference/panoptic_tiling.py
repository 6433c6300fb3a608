"""Panoptic inference on large images: overlapping tiles, things merged across the seams, stuff one segment per class.

The panoptic counterpart of seglab/inference/instance_tiling.py, whose tiles, scale rule and seam merging it
uses. `PanopticPredictor.predict` comes here by the rule semantic and instance predict use (`TileOptions.mode_for`):
mode=tile always, mode=auto when the image's longer side exceeds auto_tile x the training size, mode=stretch
never. Tiles run at the image's native resolution times the checkpoint's preprocess["native_scale"] (training
pixels per source pixel; 1 when not recorded: checkpoints written before panoptic training recorded it);
`tile` is in pixels at that scale (0 = the training size).

The steps:
1. tile windows as instance tiling spreads them (`tiled_image`: the last tile ends at the image edge,
   neighbours share at least `overlap` x tile, an image smaller than a tile is one tile);
2. per tile: the crop at the scale goes through the one panoptic path (`PanopticPredictor.predict_view`:
   normalise, pad, network and grouping, ids back to the crop's source pixels by nearest neighbour);
3. things: each thing segment of a tile is a *piece* (its box in image pixels, its mask cropped to the box),
   *cut* when it comes within `margin` pixels of an inner tile edge; pieces are merged across tiles exactly as
   instance pieces are (`merge`: a whole piece wins over cut ones, cut pieces of an object that no tile sees
   whole are unioned, duplicates dropped), then painted best score first (`paint_into`);
4. stuff: every pixel takes the stuff class of the tile whose centre is nearest (the tiles form a grid, so
   each tile owns a rectangle: `owned_spans`); a pixel whose nearest tile gives it a thing or void stays void
   unless a merged thing covers it. All the tiles' stuff of one class is one segment, scored by the mean of
   the tiles' scores weighted by the pixels each contributed;
5. segments numbered in the order they were first seen (tile by tile, each tile's segments in the model's
   order), things over stuff; the caller resizes / renumbers with `at_size` as for an untiled image (which also
   drops a segment left without pixels, e.g. a stuff class the merged things cover wholly).
With a single tile at scale 1 (an image no larger than a tile, longer side the training size) the result is the
untiled path's: same ids, same segments in the same order.

Memory: beyond the image, one int32 id map of the image (stuff codes, then things), the pieces' cropped masks
and one tile's prediction; never a full-image array per segment or per tile (`PanopticTilingStats` counts them).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import ndimage

from seglab.inference.instance import InstanceOptions
from seglab.inference.instance_tiling import (
    MARGIN,
    MATCH,
    Box,
    Merged,
    Piece,
    is_cut,
    merge,
    paint_into,
    scaled_view,
    tiled_image,
)
from seglab.inference.tiling import tile_starts

Key = tuple[int, int]  # (tile index, position in that tile's segments): where a segment was first seen


@dataclass
class TileOptions:
    """Whole image (stretch: longer side resized to the training size) or tiles at native scale."""

    mode: str = "auto"  # auto: tile when the longer side exceeds auto_tile x the training size
    auto_tile: float = 8.0
    tile: int = 0  # tile side in pixels at the tiling scale; 0 = the training size
    overlap: float = 0.25

    def __post_init__(self):  # the instance options' checks and messages
        InstanceOptions(mode=self.mode, auto_tile=self.auto_tile, tile=self.tile, overlap=self.overlap)

    @classmethod
    def from_config(cls, cfg) -> TileOptions:
        return cls(mode=cfg.mode, auto_tile=cfg.auto_tile, tile=cfg.tile, overlap=cfg.overlap)

    def mode_for(self, size: int, height: int, width: int) -> str:
        """stretch or tile for an image of height x width and a model trained at longer side `size`."""
        if self.mode == "auto":
            return "tile" if max(height, width) > self.auto_tile * size else "stretch"
        return self.mode

    def describe(self, size: int) -> str:
        return f"mode={self.mode}" + (f" (tiles of {self.tile or size} overlapping by {self.overlap})"
                                      if self.mode != "stretch" else "")


@dataclass
class PanopticTilingStats:
    tiles: int = 0
    pieces: int = 0  # thing segments of all tiles
    things: int = 0  # after merging and painting
    stuff: int = 0  # stuff classes some tile gave pixels of (things may cover one wholly: at_size drops it)
    piece_bytes: int = 0  # the cropped masks of all pieces
    windows: list[Box] = field(default_factory=list)


@dataclass
class Stuff:
    """The union of one stuff class over the tiles: where it was first seen, its pixel-weighted score."""

    key: Key
    weighted: float = 0.0
    pixels: int = 0

    @property
    def score(self) -> float:
        return self.weighted / self.pixels


def owned_spans(starts: list[int], tile: int, length: int) -> list[tuple[int, int]]:
    """Per tile start along one axis: the pixels [lo, hi) nearer to its centre than to any other's (ties: the first)."""
    centres = np.asarray(starts, np.float64) + tile / 2
    nearest = np.abs(np.arange(length)[:, None] + 0.5 - centres[None]).argmin(1)  # non-decreasing
    return [(int(np.searchsorted(nearest, i, "left")), int(np.searchsorted(nearest, i, "right")))
            for i in range(len(starts))]


def owned_boxes(tiles: list[Box], height: int, width: int, overlap: float) -> list[Box]:
    """Per tile window (row by row, as `windows` lists them): the rectangle of pixels whose nearest centre it is."""
    th, tw = tiles[0][2] - tiles[0][0], tiles[0][3] - tiles[0][1]
    rows = owned_spans(tile_starts(height, th, overlap), th, height)
    cols = owned_spans(tile_starts(width, tw, overlap), tw, width)
    boxes = [(y0, x0, y1, x1) for y0, y1 in rows for x0, x1 in cols]
    if len(boxes) != len(tiles):
        raise ValueError(f"{len(tiles)} tile windows but {len(boxes)} owned rectangles")  # windows() changed
    return boxes


def tile_things(ids: np.ndarray, segments: list[dict], is_thing: list[bool], window: Box, index: int,
                image_size: tuple[int, int], margin: int, first_seen: dict) -> list[Piece]:
    """The thing segments of one tile's prediction (ids [h, w] of `window`, 1..S) as pieces in image pixels."""
    boxes = ndimage.find_objects(ids, max_label=max([s["id"] for s in segments], default=0))
    ty0, tx0 = window[:2]
    pieces = []
    for position, segment in enumerate(segments):
        found = boxes[segment["id"] - 1]
        if not is_thing[segment["category_id"]] or found is None:
            continue
        rows, cols = found
        box = (ty0 + rows.start, tx0 + cols.start, ty0 + rows.stop, tx0 + cols.stop)
        piece = Piece(box, ids[found] == segment["id"], float(segment.get("score", 1.0)),
                      int(segment["category_id"]), index, is_cut(box, window, image_size, margin))
        first_seen[piece] = (index, position)
        pieces.append(piece)
    return pieces


def tile_stuff(ids: np.ndarray, segments: list[dict], is_thing: list[bool], window: Box, owned: Box, index: int,
               codes: np.ndarray, stuff: dict[int, Stuff]) -> None:
    """Write the tile's stuff inside the rectangle it owns into `codes` (-1 - class; 0 = thing or void there)."""
    lookup = np.zeros(max([s["id"] for s in segments], default=0) + 1, np.int32)
    for segment in segments:
        if not is_thing[segment["category_id"]]:
            lookup[segment["id"]] = -1 - int(segment["category_id"])
    local = ids[owned[0] - window[0]:owned[2] - window[0], owned[1] - window[1]:owned[3] - window[1]]
    codes[owned[0]:owned[2], owned[1]:owned[3]] = lookup[local]
    pixels = np.bincount(local.ravel(), minlength=len(lookup))
    for position, segment in enumerate(segments):
        category, count = int(segment["category_id"]), int(pixels[segment["id"]])
        if is_thing[category] or count == 0:
            continue
        union = stuff.setdefault(category, Stuff((index, position)))
        union.weighted += float(segment.get("score", 1.0)) * count
        union.pixels += count


def numbered(codes: np.ndarray, painted: list[Merged], stuff: dict[int, Stuff], first_seen: dict,
             num_classes: int) -> tuple[np.ndarray, list[dict]]:
    """codes (-1 - stuff class, 0 void, k = the k-th painted thing) -> ids 1..S in first-seen order, segments."""
    entries = [(min(first_seen[p] for p in obj.pieces), 1 + k, obj.best) for k, obj in enumerate(painted)]
    entries += [(union.key, -1 - category, union) for category, union in stuff.items()]
    table = np.zeros(num_classes + 1 + len(painted), np.int64)  # code + num_classes -> id
    segments = []
    for new_id, (_, code, source) in enumerate(sorted(entries, key=lambda e: e[0]), start=1):
        table[code + num_classes] = new_id
        category = source.label if isinstance(source, Piece) else -1 - code
        segments.append({"id": new_id, "category_id": int(category), "score": float(source.score), "iscrowd": 0})
    codes += num_classes
    return table[codes], segments


def predict_tiled(image: str | Path | np.ndarray, predict_view: Callable, is_thing: list[bool], tile: int,
                  overlap: float, scale: float = 1.0, margin: int = MARGIN, threshold: float = MATCH,
                  stats: PanopticTilingStats | None = None) -> tuple[np.ndarray, list[dict], tuple[int, int]]:
    """(segment ids int64 [H, W], segments, (H, W)) of an image from overlapping tiles (the module docstring).

    `predict_view` maps (a uint8 view [3, h, w], a size) to a prediction with `segment_ids` at that size and
    `segments` (PanopticPredictor.predict_view); `tile` is in pixels at `scale` (training pixels per source pixel)."""
    stats = stats if stats is not None else PanopticTilingStats()
    pixels, tiles = tiled_image(image, tile, overlap, scale)
    height, width = pixels.shape[:2]
    owned = owned_boxes(tiles, height, width, overlap)
    codes = np.zeros((height, width), np.int32)
    pieces: list[Piece] = []
    first_seen: dict[Piece, Key] = {}
    stuff: dict[int, Stuff] = {}
    for index, window in enumerate(tiles):
        crop = pixels[window[0]:window[2], window[1]:window[3]]
        found = predict_view(scaled_view(crop, scale), crop.shape[:2])
        ids, segments = np.asarray(found.segment_ids), list(found.segments)
        pieces += tile_things(ids, segments, is_thing, window, index, (height, width), margin, first_seen)
        tile_stuff(ids, segments, is_thing, window, owned[index], index, codes, stuff)
    painted = paint_into(codes, merge(pieces, tiles, threshold))  # things over the stuff codes
    stats.windows, stats.tiles, stats.pieces = tiles, len(tiles), len(pieces)
    stats.things, stats.stuff, stats.piece_bytes = len(painted), len(stuff), sum(p.mask.nbytes for p in pieces)
    ids, segments = numbered(codes, painted, stuff, first_seen, len(is_thing))
    return ids, segments, (height, width)
