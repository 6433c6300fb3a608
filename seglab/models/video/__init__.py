"""Video object segmentation models: name -> class (TASK_MODELS["video"]).

A video model is a promptable model (embed + decode, as seglab/models/prompt/) whose `decode` also takes a
memory of earlier frames; seglab/prompt/memory_backend.py runs it as a backend and
seglab/video/memory_propagator.py carries objects through a clip with it.
"""

from __future__ import annotations

from torch import nn

from seglab.models.video.memory_tracker import MemoryTracker

VIDEO_MODELS: dict[str, type[nn.Module]] = {
    "memory_tracker": MemoryTracker,
}
