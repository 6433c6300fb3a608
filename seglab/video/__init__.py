"""Video object segmentation: prompt objects once, follow them through the frames (seglab/video/tracker.py)."""
from seglab.video.frames import FrameSource
from seglab.video.tracker import Tracker, TrackingState

__all__ = ["FrameSource", "Tracker", "TrackingState"]
