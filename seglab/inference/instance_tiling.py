"""Instance inference on large images: overlapping tiles, detections merged across the seams.

`InstancePredictor.predict` comes here by the rule semantic predict uses (`mode_for`): mode=tile always,
mode=auto when the image's longer side exceeds auto_tile x the training size, mode=stretch never.

Scale rule. Instance models are trained on images whose longer side is resized to `size`, so the scale
the model saw (training pixels per source pixel) depends on how large the training images were, which a
checkpoint does not record today. Tiles therefore run at the image's native resolution times
`preprocess["native_scale"]` when the checkpoint records that factor (training pixels per source pixel,
e.g. 2.0 for DSB2018's 256 px images trained at 512), else at native resolution (factor 1): a large image
(a slide, a mosaic, a survey photo) is tiled at its own pixels, never downscaled first. `tile` is in
pixels at that scale (0 = the training size), so a tile spans tile / factor source pixels.

The steps:
1. tile starts as semantic tiling spreads them (`tile_starts`: the last tile ends at the image edge,
   neighbours share at least `overlap` x tile); tiles are clipped to the image, so an image smaller
   than a tile is one tile of its own size;
2. per tile: the crop (resized by the factor when it is not 1) goes through `detect` (score threshold,
   at most max_detections per tile); each mask's probabilities are resized to the crop's source pixels
   and thresholded at 0.5 on the rows and columns it reaches (`resize_rows_cols`, as the whole-image
   path), giving a *piece*: its box in image pixels and its mask cropped to that box;
3. a piece is *cut* when its box comes within `margin` pixels of an inner edge of its tile (an edge that
   is not the image's own);
4. merging, across tiles only (detections of one tile stay as the model gave them, as in the whole-image
   path): two pieces of different tiles show the same object (whatever their classes) when, inside the
   region both tiles see, their intersection covers more than `threshold` of the smaller of the two
   (overlap over smaller).
   Pieces are taken whole ones first, best score first, then cut ones, best score first:
   - a whole piece matching a kept object is a duplicate, dropped (the kept one scored at least as well);
   - a cut piece matching an object that holds a whole piece is dropped (a neighbour saw it whole);
   - a cut piece matching only cut objects joins them: the masks are unioned (an object larger than
     the overlap, cut in every tile that sees it), with the score and label of its best piece;
   - any other piece is a new object;
5. objects painted best score first into one id map, as `paint` does for the whole image: a pixel
   belongs to the best object covering it; an object left without pixels, or more than `max_covered` of
   it taken, is dropped.
`max_detections` caps each tile, not the image. With a single tile at factor 1 (an image no larger than
a tile) and an image whose longer side is the training size, the result is the whole-image path's.

Memory: pieces hold a box and a mask cropped to it, never a full-image array per detection. Beyond the
image and the id map, the peak is one tile's detections (at most max_detections x tile^2 floats, what the
model returns) plus the pieces' cropped masks (`TilingStats` counts both).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from seglab.data.instance.object_size import rescaled as scaled_view  # a crop's view at a scale, as training's
from seglab.data.io import read_image
from seglab.inference.instance import InstancePrediction, interpolation_matrix, keeps, resize_rows_cols
from seglab.inference.tiling import tile_starts

SCALE_KEY = "native_scale"  # preprocess[SCALE_KEY]: training pixels per source pixel, when recorded
MARGIN = 2  # pixels: a piece this close to an inner tile edge is cut
MATCH = 0.5  # overlap over smaller, inside the region two tiles share, that makes two pieces one object

Box = tuple[int, int, int, int]  # y0, x0, y1, x1 (end exclusive)


def tile_scale(preprocess: dict, where: str = "the checkpoint") -> float:
    """The factor tiles run at: preprocess[SCALE_KEY] when recorded, else 1 (native resolution)."""
    scale = preprocess.get(SCALE_KEY, 1.0)
    if not isinstance(scale, (int, float)) or isinstance(scale, bool) or scale <= 0:
        raise ValueError(f"{where}: preprocess {SCALE_KEY}={scale!r}; expected a positive number")
    return float(scale)


@dataclass(eq=False)  # identity: pieces hold arrays
class Piece:
    """One detection of one tile, in image pixels: `mask` bool [y1 - y0, x1 - x0] covers `box` tightly."""

    box: Box
    mask: np.ndarray
    score: float
    label: int
    tile: int
    cut: bool


@dataclass(eq=False)
class Merged:
    """An object: one piece, or the union of cut pieces of neighbouring tiles."""

    pieces: list[Piece]

    @property
    def best(self) -> Piece:
        return max(self.pieces, key=lambda p: p.score)

    @property
    def whole(self) -> bool:
        return any(not p.cut for p in self.pieces)

    def box_and_mask(self) -> tuple[Box, np.ndarray]:
        if len(self.pieces) == 1:
            return self.pieces[0].box, self.pieces[0].mask
        y0, x0 = min(p.box[0] for p in self.pieces), min(p.box[1] for p in self.pieces)
        y1, x1 = max(p.box[2] for p in self.pieces), max(p.box[3] for p in self.pieces)
        mask = np.zeros((y1 - y0, x1 - x0), bool)
        for p in self.pieces:
            mask[p.box[0] - y0:p.box[2] - y0, p.box[1] - x0:p.box[3] - x0] |= p.mask
        return (y0, x0, y1, x1), mask


@dataclass
class TilingStats:
    tiles: int = 0
    pieces: int = 0  # detections of all tiles with at least one mask pixel
    objects: int = 0  # after merging
    peak_detection_bytes: int = 0  # the largest tile's mask probabilities (what the model returned)
    piece_bytes: int = 0  # the cropped masks of all pieces
    windows: list[Box] = field(default_factory=list)


def windows(height: int, width: int, tile: int, overlap: float) -> list[Box]:
    """Tile windows (source pixels, row by row) of `tile` pixels clipped to the image, overlapping by `overlap`."""
    th, tw = min(tile, height), min(tile, width)
    return [(y, x, y + th, x + tw) for y in tile_starts(height, th, overlap) for x in tile_starts(width, tw, overlap)]


def intersect(a: Box, b: Box) -> Box | None:
    box = (max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3]))
    return box if box[0] < box[2] and box[1] < box[3] else None


def part(piece: Piece, region: Box) -> np.ndarray:
    """The piece's mask inside `region` (a box inside the piece's box)."""
    y0, x0 = piece.box[:2]
    return piece.mask[region[0] - y0:region[2] - y0, region[1] - x0:region[3] - x0]


def same_object(a: Piece, b: Piece, shared: Box, threshold: float) -> bool:
    """Inside `shared` (the region both tiles see): does a & b cover more than threshold of the smaller?"""
    overlap = intersect(a.box, b.box)
    region = overlap and intersect(overlap, shared)
    if region is None:
        return False
    inter = int((part(a, region) & part(b, region)).sum())
    if inter == 0:
        return False
    sizes = [int(part(p, r).sum()) if (r := intersect(p.box, shared)) else 0 for p in (a, b)]
    return inter > threshold * min(sizes)


def is_cut(box: Box, window: Box, image_size: tuple[int, int], margin: int) -> bool:
    """Does `box` come within `margin` pixels of an inner edge of its tile `window` (one not the image's own)?"""
    ty0, tx0, ty1, tx1 = window
    inner = (ty0 > 0, tx0 > 0, ty1 < image_size[0], tx1 < image_size[1])  # top, left, bottom, right
    gaps = (box[0] - ty0, box[1] - tx0, ty1 - box[2], tx1 - box[3])
    return any(edge and gap < margin for edge, gap in zip(inner, gaps))


def tile_pieces(crop: np.ndarray, window: Box, index: int, image_size: tuple[int, int], detect: Callable,
                scale: float, margin: int, stats: TilingStats) -> list[Piece]:
    """The detections of one tile (crop uint8 [h, w, 3] of `window`) as pieces in image pixels."""
    height, width = crop.shape[:2]
    found = detect(scaled_view(crop, scale))
    probs = found["probs"]
    stats.peak_detection_bytes = max(stats.peak_detection_bytes, probs.nbytes)
    rows, cols = interpolation_matrix(height, probs.shape[1]), interpolation_matrix(width, probs.shape[2])
    ty0, tx0 = window[:2]
    pieces = []
    for prob, score, label in zip(probs, found["scores"], found["labels"]):
        block, rs, cs = resize_rows_cols(prob, rows, cols)
        ys, xs = np.nonzero(block.any(1))[0], np.nonzero(block.any(0))[0]
        if not len(ys):
            continue
        mask = block[ys[0]:ys[-1] + 1, xs[0]:xs[-1] + 1]
        y0, x0 = ty0 + rs.start + ys[0], tx0 + cs.start + xs[0]
        box = (int(y0), int(x0), int(y0 + mask.shape[0]), int(x0 + mask.shape[1]))
        cut = is_cut(box, window, image_size, margin)
        pieces.append(Piece(box, np.ascontiguousarray(mask), float(score), int(label), index, cut))
        stats.piece_bytes += mask.nbytes
    return pieces


def overlapping(boxes: np.ndarray, box: Box) -> np.ndarray:
    """Indices of the boxes [N, 4] (y0, x0, y1, x1) that share pixels with `box`."""
    boxes = boxes.reshape(-1, 4)
    return np.flatnonzero((boxes[:, 0] < box[2]) & (boxes[:, 2] > box[0]) & (boxes[:, 1] < box[3])
                          & (boxes[:, 3] > box[1]))


def merge(pieces: list[Piece], tiles: list[Box], threshold: float = MATCH) -> list[Merged]:
    """The objects the pieces show (step 4 of the module docstring), in the order they were formed."""
    tile_boxes = np.asarray(tiles, np.int64)
    neighbours = [[j for j in overlapping(tile_boxes, tile) if j != i] for i, tile in enumerate(tiles)]
    kept: list[list[tuple[Piece, Merged]]] = [[] for _ in tiles]  # per tile: its pieces kept so far
    kept_boxes: list[list[Box]] = [[] for _ in tiles]
    objects: list[Merged] = []
    for piece in sorted(pieces, key=lambda p: (p.cut, -p.score)):  # stable: ties keep the tiles' order
        matches: list[Merged] = []
        for j in neighbours[piece.tile]:
            shared = intersect(tiles[piece.tile], tiles[j])
            for k in overlapping(np.asarray(kept_boxes[j], np.int64), piece.box):
                other, owner = kept[j][k]
                if not any(owner is m for m in matches) and same_object(piece, other, shared, threshold):
                    matches.append(owner)
        if not matches:
            owner = Merged([piece])
            objects.append(owner)
        elif piece.cut and not any(m.whole for m in matches):
            owner = matches[0]
            for extra in matches[1:]:  # a cut piece joining several cut objects: one object (a corner)
                for tile in {p.tile for p in extra.pieces}:
                    kept[tile] = [(p, owner if o is extra else o) for p, o in kept[tile]]
                owner.pieces += extra.pieces
                objects.remove(extra)
            owner.pieces.append(piece)
        else:
            continue  # a duplicate of an object already seen better, or whole by a neighbour
        kept[piece.tile].append((piece, owner))
        kept_boxes[piece.tile].append(piece.box)
    return objects


def paint_into(ids: np.ndarray, objects: list[Merged], max_covered: float = 1.0) -> list[Merged]:
    """Best score first into `ids` (as `paint`): an object takes the pixels of its mask no better object took
    (those <= 0: background, or codes of the caller's own), gets the id 1 + the objects painted before it, and
    is dropped when left without pixels or more than `max_covered` of its mask taken. Returns the painted
    objects, in id order."""
    painted: list[Merged] = []
    for obj in sorted(objects, key=lambda o: -o.best.score):
        (y0, x0, y1, x1), mask = obj.box_and_mask()
        target = ids[y0:y1, x0:x1]
        free = mask & (target <= 0)
        if keeps(mask, free, max_covered):
            painted.append(obj)
            target[free] = len(painted)
    return painted


def paint_objects(objects: list[Merged], size: tuple[int, int], max_covered: float = 1.0) -> InstancePrediction:
    """Best score first into one id map (as `paint`): a pixel goes to the best object covering it."""
    ids = np.zeros(size, np.int32)
    painted = paint_into(ids, objects, max_covered)
    return InstancePrediction(ids, np.asarray([o.best.score for o in painted], np.float32),
                              np.asarray([o.best.label for o in painted], np.int64))


def native_image(image: str | Path | np.ndarray) -> np.ndarray:
    """RGB uint8 [H, W, 3] at the file's full resolution (as displayed: EXIF orientation applied)."""
    return image if isinstance(image, np.ndarray) else np.asarray(read_image(Path(image)))


def tiled_image(image: str | Path | np.ndarray, tile: int, overlap: float, scale: float
                ) -> tuple[np.ndarray, list[Box]]:
    """(the image at native resolution, its tile windows in source pixels) for tiles of `tile` pixels at `scale`."""
    if not 0 <= overlap < 1:
        raise ValueError(f"overlap={overlap}: expected a fraction in [0, 1)")
    if tile < 1:
        raise ValueError(f"tile={tile}: expected at least 1 pixel")
    pixels = native_image(image)
    return pixels, windows(pixels.shape[0], pixels.shape[1], max(1, round(tile / scale)), overlap)


def predict_tiled(image: str | Path | np.ndarray, detect: Callable, tile: int, overlap: float, scale: float = 1.0,
                  margin: int = MARGIN, threshold: float = MATCH, stats: TilingStats | None = None,
                  max_covered: float = 1.0) -> InstancePrediction:
    """The instances of an image at its own size from overlapping tiles (the module docstring).

    `detect` maps a uint8 view [3, h, w] to {"scores" [N], "labels" [N] 0-based, "probs" [N, h, w]}
    (InstancePredictor.detect); `tile` is in pixels at the scale `scale` (training pixels per source pixel)."""
    stats = stats if stats is not None else TilingStats()
    pixels, tiles = tiled_image(image, tile, overlap, scale)
    height, width = pixels.shape[:2]
    stats.windows = tiles
    pieces: list[Piece] = []
    for index, window in enumerate(tiles):
        crop = pixels[window[0]:window[2], window[1]:window[3]]
        pieces += tile_pieces(crop, window, index, (height, width), detect, scale, margin, stats)
    objects = merge(pieces, tiles, threshold)
    stats.tiles, stats.pieces, stats.objects = len(tiles), len(pieces), len(objects)
    return paint_objects(objects, (height, width), max_covered)
