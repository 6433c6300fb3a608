"""The video view's routes (included by seglab/serve/app.py): prompt objects on any frame of a clip, propagate
them with the tracker (seglab/video/, the model's default propagator) in the background, scrub, correct, save.

    GET  /video                                   the page (static/video.html)
    POST /api/videos                              upload (multipart `files`: one video file or several images) -> state
    GET  /api/videos/{id}                         state
    GET  /api/videos/{id}/frames/{i}.jpg          frame i as JPEG, its objects painted on (`masks=0`: the bare frame)
    GET  /api/videos/{id}/frames/{i}/masks        {"frame", "objects": [{"obj_id", "mask" (COCO RLE), "area"}]}
    POST /api/videos/{id}/click                   {"frame", "x", "y", "label": 1 | 0} -> state (the current object)
    POST /api/videos/{id}/next                    the next clicks draw a new object -> state
    POST /api/videos/{id}/propagate               {"start": frame | null} starts the propagation -> state
    GET  /api/videos/{id}/progress                the propagation: {running, done, total, frame, start, error}
    POST /api/videos/{id}/cancel                  stop the propagation after the frame it is on -> state
    POST /api/videos/{id}/save                    write out/video/<stem>/ (seglab/serve/video_saving.py) -> state + saved

A state is {video, name, frames, width, height, fps, objects, current_obj, prompts ([{frame, obj_id, point,
label}]), tracked (frames with results), dirty_from (where the next propagation starts; null: up to date),
version (changes with the masks; the page's frame URLs carry it), job, ms}. Errors as the image view's,
plus 409 (a propagation is running) and 413 / 422 for clips past the frame caps or with mixed frame sizes.
"""

from __future__ import annotations

import io
import shutil
import time
from pathlib import Path

from fastapi import APIRouter, File, UploadFile
from fastapi.responses import FileResponse, Response
from PIL import Image
from pydantic import BaseModel

from seglab.serve.masks import rle
from seglab.serve.uploads import UploadError, check_size
from seglab.serve.video_saving import save_clip
from seglab.serve.video_session import VideoSession, VideoStore, new_folder, open_frames
from seglab.tasks.video.paint import overlay_frame
from seglab.video import Tracker

STATIC = Path(__file__).resolve().parent / "static"
JPEG_QUALITY = 90


class FrameClick(BaseModel):
    frame: int
    x: float
    y: float
    label: int = 1


class Start(BaseModel):
    start: int | None = None


def video_state(session: VideoSession, ms: float = 0.0) -> dict:
    height, width = session.state.size
    return {"video": session.id, "name": session.name, "frames": session.frame_count, "width": width,
            "height": height, "fps": float(session.state.frames.rate), "objects": list(session.state.obj_ids),
            "current_obj": session.current_obj, "prompts": session.prompts(),
            "tracked": sorted(session.state.results), "dirty_from": session.dirty_from, "version": session.version,
            "job": session.job.public(), "ms": round(ms, 1)}


def jpeg(rgb) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue()


def video_router(engine, options) -> APIRouter:
    """The routes for one loaded model (a promptable one: other models answer 400) and the ServeOptions."""
    router = APIRouter()
    videos = VideoStore()

    def act(video_id: str, action) -> dict:
        session = videos.get(video_id)
        with session.lock:
            start = time.perf_counter()
            action(session)
            return video_state(session, (time.perf_counter() - start) * 1000)

    @router.get("/video")
    def page():
        return FileResponse(STATIC / "video.html")

    @router.post("/api/videos")
    def upload(files: list[UploadFile] = File(...)):
        if not engine.clicks:
            raise ValueError(f"the video view needs a promptable model (the server runs a {engine.task} model): "
                             "start it with model= a click-model checkpoint or SAM weights")
        received, total = [], 0
        for file in files:
            name = Path(file.filename or "upload").name
            data = file.file.read(options.max_bytes + 1 - total)
            total += len(data)
            check_size(max(total, file.size or 0), options.max_upload_mb,
                       name if len(files) == 1 else f"{len(files)} files (with {name})")
            received.append((name, data))
        start = time.perf_counter()
        folder = new_folder()
        try:
            frames = open_frames(folder, received, options.max_video_frames, options.max_upload_mb)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        tracker = Tracker(engine.backend)
        stem = Path(min(name for name, _ in received)).stem
        session = VideoSession(stem, tracker, tracker.init_state(frames), folder)
        videos.add(session)
        return video_state(session, (time.perf_counter() - start) * 1000)

    @router.get("/api/videos/{video_id}")
    def get_state(video_id: str):
        return video_state(videos.get(video_id))

    @router.get("/api/videos/{video_id}/frames/{index}.jpg")
    def frame_image(video_id: str, index: int, masks: int = 1):
        session = videos.get(video_id)
        ids, found = session.masks(index)
        rgb = session.state.frames[index]
        return Response(jpeg(overlay_frame(rgb, ids, found) if masks and ids else rgb), media_type="image/jpeg",
                        headers={"Cache-Control": "no-cache"})

    @router.get("/api/videos/{video_id}/frames/{index}/masks")
    def frame_masks(video_id: str, index: int):
        ids, found = videos.get(video_id).masks(index)
        return {"frame": index, "objects": [{"obj_id": o, "mask": rle(m), "area": int(m.sum())}
                                            for o, m in zip(ids, found)]}

    @router.post("/api/videos/{video_id}/click")
    def click(video_id: str, body: FrameClick):
        if body.label not in (0, 1):
            raise ValueError(f"label={body.label}: 1 (positive) or 0 (negative)")
        return act(video_id, lambda s: s.click(body.frame, body.x, body.y, body.label))

    @router.post("/api/videos/{video_id}/next")
    def next_object(video_id: str):
        return act(video_id, VideoSession.next_object)

    @router.post("/api/videos/{video_id}/propagate")
    def propagate(video_id: str, body: Start | None = None):
        return act(video_id, lambda s: s.propagate(body.start if body else None))

    @router.get("/api/videos/{video_id}/progress")
    def progress(video_id: str):
        return videos.get(video_id).job.public()

    @router.post("/api/videos/{video_id}/cancel")
    def cancel(video_id: str):
        return act(video_id, lambda s: s.job.cancel.set())

    @router.post("/api/videos/{video_id}/save")
    def save(video_id: str):
        session = videos.get(video_id)
        with session.lock:
            if session.job.running:
                raise UploadError(409, "a propagation is running: save when it is done")
            if not session.state.results:
                raise ValueError("nothing to save: click on an object and propagate first")
            return {**video_state(session), "saved": save_clip(options.out, session)}

    return router
