"""One clip being annotated in the page's video view: its frames, the tracker's state, and the propagation
that runs in a background thread while the page polls its progress.

Frames: an uploaded video file is decoded once at upload (seglab/video/frames.py spills each frame to a
PNG in a temporary folder), several uploaded images become a folder of frames sorted by name (as
FrameSource reads folders). A clip is refused with 413 past `max_frames` frames (only `max_frames + 1`
are decoded to find out) or past MAX_FRAME_PIXELS per frame, with 422 when its images differ in size.

Prompts are the tracker's (`Tracker.add_prompt`): a click adds a point to one object on one frame. The
frames prompted since the last propagation say where the next one starts (`dirty_from`): forward from
there to the end, and also backwards to frame 0 when it is the first prompted frame (as `seglab track`).
Clicks wait for no propagation: while one runs they are refused (409), as the tracker's state is shared.
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from seglab.data.io import DataError
from seglab.inference.sources import VIDEO_SUFFIXES
from seglab.serve.saving import safe_stem
from seglab.serve.uploads import UploadError, decode_image
from seglab.video import FrameSource, Tracker, TrackingState

MAX_FRAME_PIXELS = 1920 * 1080  # a larger frame: 413 (the page's frames are spilled to PNG and embedded one by one)
TAKES = f"one video file ({', '.join(VIDEO_SUFFIXES)}) or several image frames"
_PROPAGATING = threading.Lock()  # one propagation at a time: they share the model and the CPU / GPU


class SharedFrames(FrameSource):
    """A FrameSource the propagation thread and the page's frame requests can read at the same time."""

    def __init__(self, path: Path, cache: int = 8):
        self._lock = threading.RLock()
        super().__init__(path, cache=cache)

    def __getitem__(self, index: int) -> np.ndarray:
        with self._lock:
            return super().__getitem__(index)

    def __len__(self) -> int:
        with self._lock:
            return super().__len__()


def open_frames(folder: Path, files: list[tuple[str, bytes]], max_frames: int, max_mb: float) -> SharedFrames:
    """The clip in the uploaded `files` ((name, bytes)), written under `folder`, checked against the caps."""
    if not files:
        raise UploadError(400, f"no file uploaded: the video view takes {TAKES}")
    videos = [name for name, _ in files if Path(name).suffix.lower() in VIDEO_SUFFIXES]
    if videos and len(files) > 1:
        raise UploadError(415, f"{videos[0]} is a video among {len(files)} files: the video view takes {TAKES}")
    if videos:
        path = folder / f"{safe_stem(videos[0])}{Path(videos[0]).suffix.lower()}"
        path.write_bytes(files[0][1])
        try:
            frames = SharedFrames(path)
        except DataError as e:
            raise UploadError(415, f"{videos[0]}: {e}") from None
    else:
        frames = SharedFrames(_write_images(folder / "frames", files, max_mb))
    try:
        _check_caps(frames, files[0][0] if videos else f"{len(files)} frames", max_frames)
    except BaseException:
        frames.close()
        raise
    return frames


def _write_images(folder: Path, files: list[tuple[str, bytes]], max_mb: float) -> Path:
    folder.mkdir()
    size, stems = None, {}
    for name, data in sorted(files):
        try:
            image = decode_image(data, name, max_mb)
        except UploadError as e:
            raise UploadError(e.status, f"{e.message} (the video view takes {TAKES})" if e.status == 415 else e.message
                              ) from None
        if size is not None and image.rgb.shape != size[1]:
            raise UploadError(422, f"{name} is {image.rgb.shape[1]}x{image.rgb.shape[0]} but {size[0]} is "
                                   f"{size[1][1]}x{size[1][0]}: the frames of a clip have one size")
        size = size or (name, image.rgb.shape)
        stem = safe_stem(name)
        if stem in stems:
            raise UploadError(400, f"{name} and {stems[stem]} would be the same frame {stem!r}: rename one")
        stems[stem] = name
        Image.fromarray(image.rgb).save(folder / f"{stem}.png", compress_level=1)
    return folder


def _check_caps(frames: SharedFrames, what: str, max_frames: int) -> None:
    try:
        height, width = frames.size()
        if height * width > MAX_FRAME_PIXELS:
            raise UploadError(413, f"{what}: frames are {width}x{height}; the video view takes frames of at most "
                                   f"{MAX_FRAME_PIXELS / 1e6:.2f} megapixels (1920x1080): downscale the clip")
        try:
            frames[max_frames]  # decodes max_frames + 1 frames at most
        except IndexError:
            return
    except DataError as e:
        raise UploadError(400, str(e)) from None
    raise UploadError(413, f"{what}: more than {max_frames} frames; the video view takes clips of at most "
                           f"{max_frames} frames (max_video_frames=...): cut the clip")


@dataclass
class Job:
    """The last propagation: `done` of `total` frames, the frame it is on, its error (None: fine)."""
    running: bool = False
    done: int = 0
    total: int = 0
    frame: int | None = None
    start: int | None = None
    error: str | None = None
    cancel: threading.Event = field(default_factory=threading.Event)

    def public(self) -> dict:
        return {"running": self.running, "done": self.done, "total": self.total, "frame": self.frame,
                "start": self.start, "error": self.error}


@dataclass
class VideoSession:
    name: str  # the upload's stem: the saved folder's name
    tracker: Tracker
    state: TrackingState
    folder: Path  # the temporary folder of the uploaded files (removed by close)
    current_obj: int = 1  # the object the next click goes to
    dirty_from: int | None = None  # the earliest frame prompted since the last propagation
    version: int = 0  # changes whenever a frame's masks may have changed (the page's image URLs carry it)
    job: Job = field(default_factory=Job)
    id: str = field(default_factory=lambda: secrets.token_urlsafe(9))
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def frame_count(self) -> int:
        return len(self.state.frames)

    def _check_idle(self) -> None:
        if self.job.running:
            raise UploadError(409, "a propagation is running: wait for it (or cancel it) before adding prompts")

    def click(self, frame: int, x: float, y: float, label: int) -> None:
        """A positive (1) or negative (0) point on `frame` for the current object."""
        self._check_idle()
        height, width = self.state.size
        if not (0 <= x < width and 0 <= y < height):
            raise ValueError(f"click ({x:g}, {y:g}) is outside the {width}x{height} frame")
        self.tracker.add_prompt(self.state, frame=frame, obj_id=self.current_obj, points=[[x, y]], labels=[label])
        self.dirty_from = frame if self.dirty_from is None else min(self.dirty_from, frame)
        self.version += 1

    def next_object(self) -> None:
        """The next clicks draw a new object (when the current one has a prompt)."""
        if self.current_obj in self.state.obj_ids:
            self.current_obj = max(self.state.obj_ids) + 1

    def plan(self, start: int | None) -> list[tuple[int, bool]]:
        """[(start, reverse)] of the next propagation."""
        if not self.state.prompts:
            raise ValueError("nothing to propagate: click on an object first")
        first = min(self.state.prompts)
        if start is None:
            start = first if self.dirty_from is None else self.dirty_from
        if not 0 <= start < self.frame_count:
            raise ValueError(f"start={start}: the clip has frames 0..{self.frame_count - 1}")
        return [(start, False)] + ([(start, True)] if start == first and start > 0 else [])

    def propagate(self, start: int | None = None) -> None:
        """Start propagating in a background thread (the job's progress is `self.job`)."""
        self._check_idle()
        plan = self.plan(start)
        n = self.frame_count
        self.job = Job(running=True, start=plan[0][0], total=sum(s + 1 if back else n - s for s, back in plan))
        threading.Thread(target=self._run, args=(plan, self.job), daemon=True, name=f"propagate-{self.id}").start()

    def _run(self, plan: list[tuple[int, bool]], job: Job) -> None:
        try:
            with _PROPAGATING:
                for start, reverse in plan:
                    for frame, _, _ in self.tracker.propagate(self.state, start=start, reverse=reverse):
                        job.done, job.frame = job.done + 1, frame
                        if job.cancel.is_set():
                            break
                    if job.cancel.is_set():
                        job.error = f"cancelled at frame {job.frame}"
                        break
            if job.error is None:
                self.dirty_from = None
        except Exception as e:  # shown in the page; the results of the frames done so far stand
            job.error = f"propagation failed at frame {job.frame}: {e}"
        finally:
            self.version += 1
            job.running = False

    def masks(self, frame: int) -> tuple[list[int], np.ndarray]:
        """(obj_ids, bool [objects, H, W]) on `frame` (all False where an object has no result)."""
        if not 0 <= frame < self.frame_count:
            raise UploadError(404, f"frame {frame}: the clip has frames 0..{self.frame_count - 1}")
        ids = list(self.state.obj_ids)
        masks = [self.state.mask(frame, o) for o in ids]
        return ids, np.stack(masks) if masks else np.zeros((0, *self.state.size), bool)

    def prompts(self) -> list[dict]:
        """Every point, as the page draws it: {frame, obj_id, point: [x, y], label}."""
        return [{"frame": f, "obj_id": o, "point": [float(x), float(y)], "label": int(label)}
                for f, objects in sorted(self.state.prompts.items()) for o, prompt in objects.items()
                if prompt.points is not None for (x, y), label in zip(prompt.points, prompt.labels)]

    def close(self) -> None:
        self.job.cancel.set()
        self.state.frames.close()
        shutil.rmtree(self.folder, ignore_errors=True)


def new_folder() -> Path:
    return Path(tempfile.mkdtemp(prefix="seglab_serve_video_"))


class VideoStore:
    """The open clips by id; past `capacity` the least recently used one is closed (its frames deleted)."""

    def __init__(self, capacity: int = 2):
        self.capacity = capacity
        self._sessions: OrderedDict[str, VideoSession] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, session: VideoSession) -> VideoSession:
        with self._lock:
            self._sessions[session.id] = session
            while len(self._sessions) > self.capacity:
                self._sessions.popitem(last=False)[1].close()
        return session

    def get(self, session_id: str) -> VideoSession:
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None:
                raise UploadError(404, f"no open clip {session_id!r} (the server restarted or closed it to make "
                                       "room: open the clip again)")
            self._sessions.move_to_end(session_id)
        return session
