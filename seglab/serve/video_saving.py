"""Save a clip annotated in the video view, in the layout `seglab track` writes (docs/video.md):

    out/video/<stem>/frames/<frame>.png     object ids per frame (0 background, the page's object ids;
                                            DAVIS annotations' form, 16-bit past 255), every frame of the clip
    out/video/<stem>/<stem>_overlay.mp4     each object in its colour, at the clip's frame rate
    out/video/<stem>/prompts.json           the clicks, as `seglab track prompts=...` reads them

The painting and the writers are the track mode's (seglab/tasks/video/paint.py, OverlayWriter, save_ids).
A frame the propagation has not reached is saved empty and counted in "untracked". Saving again replaces
the folder's frames.
"""

from __future__ import annotations

import json
from pathlib import Path

from seglab.inference.instance_outputs import save_ids
from seglab.inference.video import OverlayWriter
from seglab.serve.saving import safe_stem, write_atomic
from seglab.serve.video_session import VideoSession
from seglab.tasks.video.paint import object_ids, overlay_frame


def prompts_entries(session: VideoSession) -> list[dict]:
    """One entry per object and prompted frame: {"frame", "obj_id", "points", "labels"}."""
    return [{"frame": f, "obj_id": o, "points": prompt.points.tolist(), "labels": prompt.labels.tolist()}
            for f, objects in sorted(session.state.prompts.items()) for o, prompt in objects.items()
            if prompt.points is not None]


def save_clip(out: Path, session: VideoSession) -> dict:
    folder = Path(out) / "video" / safe_stem(session.name)
    frames_dir = folder / "frames"
    frames_dir.mkdir(parents=True, exist_ok=True)
    for old in frames_dir.glob("*.png"):
        old.unlink()
    state = session.state
    names = state.frames.names
    height, width = state.size
    video = folder / f"{safe_stem(session.name)}_overlay.mp4"
    writer = OverlayWriter(video, state.frames.rate, width, height)
    untracked = 0
    try:
        for frame in range(len(names)):
            ids, masks = session.masks(frame)
            untracked += frame not in state.results
            save_ids(frames_dir / f"{names[frame]}.png", object_ids(ids, masks))
            writer.write(overlay_frame(state.frames[frame], ids, masks))
    finally:
        writer.close()
    prompts = folder / "prompts.json"
    write_atomic(prompts, json.dumps(prompts_entries(session), indent=1).encode())
    return {"folder": str(folder), "frames": str(frames_dir), "count": len(names), "video": str(video),
            "prompts": str(prompts), "objects": list(state.obj_ids), "untracked": untracked}
