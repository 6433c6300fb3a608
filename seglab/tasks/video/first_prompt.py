"""How val gives each object to the tracker on its first annotated frame (key `video_prompt`).

- mask: the object's true mask, as DAVIS's semi-supervised protocol gives it;
- box: its bounding box (the model makes the first mask);
- click: one foreground click at the pixel farthest inside it (the model makes the first mask).
"""
from __future__ import annotations

import numpy as np

from seglab.video.prompts import inner_point, mask_box

FIRST_PROMPTS = {
    "mask": lambda mask: {"mask": mask},
    "box": lambda mask: {"box": mask_box(mask)},
    "click": lambda mask: {"points": inner_point(mask)[None], "labels": np.ones(1, np.int64)},
}
