"""The FastAPI app: the page (static/), and a JSON API over sessions (one per opened image).

    GET  /                               the page
    GET  /api/info                       the model (task, name, whether it takes clicks), source images, out
    POST /api/sessions                   upload an image (multipart `file`) -> state
    POST /api/sessions/source            {"name": file in source=} -> state
    GET  /api/sessions/{id}/image        the image as the server decoded it (EXIF orientation applied)
    POST /api/sessions/{id}/click        {"x", "y", "label": 1 positive | 0 negative} -> state
    POST /api/sessions/{id}/box          {"box": [x0, y0, x1, y1]} -> state
    POST /api/sessions/{id}/undo|clear|next -> state
    GET  /api/sessions/{id}/mask.png     the object being drawn, 0 / 255 (all 0 when there is none)
    POST /api/sessions/{id}/save         write the objects to out/ (seglab/serve/saving.py) -> state + files

A state is {session, name, width, height, task, clicks, objects, prompts, score, mask (COCO RLE of
the object being drawn, or null), area, overlay (RGBA PNG data URL of every object), prediction
(semantic / instance checkpoints: overlay and legend), ms (model time)}. Errors are
{"detail": message} with the HTTP status (413 too big, 415 not an image type the page takes, 400
bad input, 404 unknown session).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from fastapi import FastAPI, File, Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel

from seglab.data.io import IMAGE_SUFFIXES
from seglab.serve.masks import data_url, overlay_rgba, png_bytes, rle
from seglab.serve.saving import save_annotation
from seglab.serve.session import Session, SessionStore
from seglab.serve.uploads import UploadError, check_size, decode_image
from seglab.serve.video_routes import video_router

STATIC = Path(__file__).resolve().parent / "static"
MULTIPART_SLACK = 64 * 1024  # bytes of multipart framing allowed on top of the file itself


@dataclass
class ServeOptions:
    out: Path
    source: Path | None = None
    max_upload_mb: float = 20.0
    max_sessions: int = 8
    max_video_frames: int = 300  # the video view's frame cap (seglab/serve/video_session.py)

    @property
    def max_bytes(self) -> int:
        return int(self.max_upload_mb * 2**20)


class Click(BaseModel):
    x: float
    y: float
    label: int = 1


class Box(BaseModel):
    box: list[float]


class SourcePick(BaseModel):
    name: str


def source_images(folder: Path | None) -> list[str]:
    """The image files under `source=` (relative paths, sorted)."""
    if folder is None:
        return []
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")
                  if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file() and not p.name.startswith("."))


def state(session: Session, engine, ms: float = 0.0) -> dict:
    current = session.current
    height, width = session.shape
    return {"session": session.id, "name": session.name, "width": width, "height": height, "task": engine.task,
            "clicks": engine.clicks, "objects": len(session.done), "prompts": [s.prompt for s in session.steps],
            "score": round(session.steps[-1].score, 4) if session.steps else None,
            "mask": rle(current) if current is not None else None,
            "area": int(current.sum()) if current is not None else 0,
            "overlay": data_url(png_bytes(overlay_rgba([o.mask for o in session.done], current, session.shape))),
            "prediction": session.prediction, "ms": round(ms, 1)}


def create_app(engine, options: ServeOptions) -> FastAPI:
    """The app for one loaded model (seglab/serve/engines.py `load_engine`)."""
    app = FastAPI(title="seglab serve", docs_url=None, redoc_url=None)
    sessions = SessionStore(options.max_sessions)
    app.state.engine, app.state.options, app.state.sessions = engine, options, sessions

    @app.exception_handler(UploadError)
    def upload_error(_, e: UploadError):
        return JSONResponse({"detail": e.message}, status_code=e.status)

    @app.exception_handler(ValueError)
    def bad_value(_, e: ValueError):
        return JSONResponse({"detail": str(e)}, status_code=400)

    @app.middleware("http")
    async def refuse_big_uploads(request: Request, call_next):
        """413 before the body is read when Content-Length already says the file is too big."""
        length = request.headers.get("content-length", "")
        if request.method == "POST" and length.isdigit() and int(length) > options.max_bytes + MULTIPART_SLACK:
            return JSONResponse({"detail": f"upload is {int(length) / 2**20:.1f} MB; uploads are limited to "
                                           f"{options.max_upload_mb:g} MB (max_upload_mb=...)"}, status_code=413)
        return await call_next(request)

    def open_session(data: bytes, name: str) -> dict:
        image = decode_image(data, name, options.max_upload_mb)
        start = time.perf_counter()
        session = Session(Path(name).stem, image, predictor=engine.predictor(image.rgb),
                          prediction=engine.prediction(image.rgb))
        sessions.add(session)
        return state(session, engine, (time.perf_counter() - start) * 1000)

    def find(session_id: str) -> Session:
        try:
            return sessions.get(session_id)
        except KeyError:
            raise UploadError(404, f"no open image {session_id!r} (the server restarted or closed it to make room: "
                                   "open the image again)") from None

    def act(session_id: str, action) -> dict:
        session = find(session_id)
        with session.lock:
            start = time.perf_counter()
            action(session)
            return state(session, engine, (time.perf_counter() - start) * 1000)

    @app.get("/")
    def page():
        return FileResponse(STATIC / "index.html")

    @app.get("/api/info")
    def info():
        return {"model": engine.name, "task": engine.task, "clicks": engine.clicks,
                "source": source_images(options.source), "out": str(options.out),
                "max_upload_mb": options.max_upload_mb}

    @app.post("/api/sessions")
    def upload(file: UploadFile = File(...)):
        name = Path(file.filename or "upload").name
        data = file.file.read(options.max_bytes + 1)
        check_size(max(len(data), file.size or 0), options.max_upload_mb, name)
        return open_session(data, name)

    @app.post("/api/sessions/source")
    def from_source(pick: SourcePick):
        if pick.name not in source_images(options.source):
            raise UploadError(404, f"{pick.name!r} is not an image of source={options.source}")
        path = options.source / pick.name
        check_size(path.stat().st_size, options.max_upload_mb, pick.name)
        return open_session(path.read_bytes(), pick.name)

    @app.get("/api/sessions/{session_id}/image")
    def image(session_id: str):
        return Response(png_bytes(find(session_id).image.rgb), media_type="image/png")

    @app.post("/api/sessions/{session_id}/click")
    def click(session_id: str, body: Click):
        if body.label not in (0, 1):
            raise ValueError(f"label={body.label}: 1 (positive) or 0 (negative)")

        def add(session: Session):
            height, width = session.shape
            if not (0 <= body.x < width and 0 <= body.y < height):
                raise ValueError(f"click ({body.x:g}, {body.y:g}) is outside the {width}x{height} image")
            session.add({"point": [body.x, body.y], "label": body.label})
        return act(session_id, add)

    @app.post("/api/sessions/{session_id}/box")
    def box(session_id: str, body: Box):
        if len(body.box) != 4:
            raise ValueError(f"box has {len(body.box)} numbers; give [x0, y0, x1, y1]")
        x0, y0, x1, y1 = body.box
        corners = [min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)]
        if corners[2] - corners[0] < 1 or corners[3] - corners[1] < 1:
            raise ValueError(f"box {body.box} is less than a pixel wide or high")
        return act(session_id, lambda s: s.add({"box": corners}))

    @app.post("/api/sessions/{session_id}/undo")
    def undo(session_id: str):
        return act(session_id, Session.undo)

    @app.post("/api/sessions/{session_id}/clear")
    def clear(session_id: str):
        return act(session_id, Session.clear)

    @app.post("/api/sessions/{session_id}/next")
    def next_object(session_id: str):
        return act(session_id, Session.next_object)

    @app.get("/api/sessions/{session_id}/mask.png")
    def mask(session_id: str):
        session = find(session_id)
        current = session.current if session.current is not None else np.zeros(session.shape, bool)
        return Response(png_bytes(current.astype(np.uint8) * 255), media_type="image/png")

    @app.post("/api/sessions/{session_id}/save")
    def save(session_id: str):
        session = find(session_id)
        with session.lock:
            masks = session.masks()
            if not masks:
                raise ValueError("nothing to save: draw an object first")
            written = save_annotation(options.out, session.name, session.image, masks)
            return {**state(session, engine), "saved": written}

    app.include_router(video_router(engine, options))  # the video view: seglab/serve/video_routes.py
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app
