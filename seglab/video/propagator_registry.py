"""Which propagator a promptable model gets in `Tracker` (seglab/video/propagators.py has the protocol).

A backend declares `video_propagator`: the name of one of `PROPAGATORS` (a backend below the video layer
cannot import its propagator, so it names it), or a method that makes one. Without it, the re-prompt
baseline.
"""
from __future__ import annotations

from seglab.video.memory_propagator import MemoryPropagator
from seglab.video.propagators import RepromptPropagator
from seglab.video.sam2_memory import Sam2MemoryPropagator

PROPAGATORS = {"reprompt": RepromptPropagator, "sam2_memory": Sam2MemoryPropagator,
               "memory": MemoryPropagator}  # seglab's memory tracker (seglab/video/memory_propagator.py)


def propagator_for(backend):
    declared = getattr(backend, "video_propagator", None)
    if declared is None:
        return RepromptPropagator(backend)
    if callable(declared):
        return declared()
    if declared not in PROPAGATORS:
        raise KeyError(f"{getattr(backend, 'name', type(backend).__name__)}: video_propagator={declared!r}; "
                       f"expected one of {', '.join(PROPAGATORS)}")
    return PROPAGATORS[declared](backend)
