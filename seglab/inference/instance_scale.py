"""Object-size inference: predict an image at the scale that makes its objects the size the model learnt.

A checkpoint trained with `object_size` (seglab/data/instance/object_size.py) records it as
preprocess["object_size"]; `object_size=` at val / predict sets it for any instance checkpoint (0 = off).
Then `InstancePredictor.predict` runs two passes:
1. the usual one (the whole image at the longer-side rule, or tiles: `mode_for`);
2. the objects' median equivalent diameter d measured on its instances with score >= SIZE_SCORE (a fixed
   threshold, not min_score, so calibrating min_score does not move the scale it is calibrated at); with at
   least MIN_OBJECTS of them the image is predicted again at `object_size / d` pixels per source pixel,
   through the tiling path (seglab/inference/instance_tiling.py: an image that fits one tile at that scale is
   one tile, i.e. the whole image), and that result is returned; with fewer, the first pass's.
"""

from __future__ import annotations

import numpy as np

from seglab.data.instance.object_size import median_diameter, object_scale

SIZE_SCORE = 0.5  # the first pass's instances that measure the objects
MIN_OBJECTS = 3  # fewer measured objects: the first pass stands


def measured_scale(prediction, object_size: float) -> float | None:
    """The scale (view pixels per source pixel) that makes the median confident instance of `prediction`
    (an InstancePrediction at the image's own size) `object_size` across; None with fewer than MIN_OBJECTS."""
    confident = prediction.confident(SIZE_SCORE)
    areas = np.bincount(confident.ids.ravel(), minlength=len(confident) + 1)[1:]
    if int((areas > 0).sum()) < MIN_OBJECTS:
        return None
    return object_scale(median_diameter(areas), object_size)
