"""Video object segmentation: prompt objects on a frame and follow them through the clip.

API: seglab/video/ (Tracker, FrameSource); data: seglab/data/video/ (DAVIS folders); metric:
seglab/metrics/video.py (DAVIS J&F). The models are promptable checkpoints (task prompt, or official
SAM / SAM 2 weights through seglab.prompt); how objects move between frames is the model's propagator
(seglab/video/propagators.py; the re-prompt baseline for any promptable model).
"""
from seglab.data.video import VIDEO_FORMATS
from seglab.models import DEFAULT_MODELS, TASK_MODELS
from seglab.tasks.base import Task
from seglab.tasks.video.track import track
from seglab.tasks.video.train import train
from seglab.tasks.video.val import val

VIDEO = Task(
    name="video",
    summary="prompt objects once, follow them through a clip (promptable checkpoints); DAVIS J&F",
    models=TASK_MODELS["video"],  # memory_tracker (seglab's own); val / track also take any promptable checkpoint
    formats=VIDEO_FORMATS,
    selection_metrics={"j_and_f_mean": 1.0},
    default_model=DEFAULT_MODELS["video"],
    modes={"val": val, "track": track, "train": train},
)
