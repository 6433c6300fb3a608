"""Objects' masks -> one object-id map (DAVIS annotations' form) and an overlay frame."""
from __future__ import annotations

import numpy as np

from seglab.inference.instance import InstancePrediction
from seglab.inference.instance_outputs import instance_overlay


def object_ids(obj_ids: list[int], masks: np.ndarray) -> np.ndarray:
    """int64 [H, W]: 0 background, else the id of the first object (in obj_ids order) covering the pixel."""
    out = np.zeros(masks.shape[1:], np.int64)
    for obj_id, mask in zip(reversed(obj_ids), masks[::-1]):
        out[mask] = obj_id
    return out


def overlay_frame(frame: np.ndarray, obj_ids: list[int], masks: np.ndarray) -> np.ndarray:
    """The frame with each object filled and outlined in its own colour (colour k = the k-th object, every frame)."""
    order = np.zeros(masks.shape[1:], np.int32)
    for k in range(len(obj_ids) - 1, -1, -1):
        order[masks[k]] = k + 1
    prediction = InstancePrediction(order, np.ones(len(obj_ids), np.float32), np.zeros(len(obj_ids), np.int64))
    return instance_overlay(frame, prediction, [], text=False)
