"""Video object segmentation data: DAVIS folders (seglab/data/video/davis.py)."""
from seglab.data.video import davis
from seglab.data.video.davis import Sequence, load_sequences, matches

VIDEO_FORMATS = {"davis": davis}  # name -> module with matches(root)

__all__ = ["VIDEO_FORMATS", "Sequence", "load_sequences", "matches"]
