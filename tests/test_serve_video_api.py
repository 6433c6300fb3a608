"""The video view's JSON API through FastAPI's TestClient: upload a clip (an mp4 or several frames), click, propagate
in the background and poll, scrub the masks, correct a frame and re-propagate from it, save; the caps (upload
size, frame count, frame sizes) and the refusals (409 while propagating, 404, 415).

Clip and model: tests/serve_video_fakes.py (a disc that jumps at frame 2; a colour seed-fill backend), so
the tracker loses the disc at the jump and a click on frame 2 must bring it back on the frames after.
"""
from __future__ import annotations

import io
import json
import threading
import time

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi", reason="seglab serve needs fastapi (pip install 'seglab[serve]')")
pytest.importorskip("multipart", reason="seglab serve needs python-multipart (pip install 'seglab[serve]')")
pytest.importorskip("av", reason="videos need PyAV (pip install av)")
from fastapi.testclient import TestClient  # noqa: E402

from seglab.serve.app import ServeOptions, create_app  # noqa: E402
from seglab.serve.engines import load_engine  # noqa: E402
from seglab.serve.masks import rle_decode  # noqa: E402
from seglab.tasks.video.prompts_file import read_prompts  # noqa: E402
from seglab.video import FrameSource  # noqa: E402
from serve_video_fakes import SIZE, SeedFillBackend, centre, frame_image, iou, truth, write_clip  # noqa: E402


def make_client(tmp_path, backend=None, **options) -> TestClient:
    app = create_app(load_engine(backend or SeedFillBackend()), ServeOptions(out=tmp_path / "out", **options))
    return TestClient(app)


@pytest.fixture
def clip(tmp_path):
    return write_clip(tmp_path / "disc.mp4").read_bytes()


def upload(client, files):
    return client.post("/api/videos", files=[("files", (name, data, "application/octet-stream"))
                                             for name, data in files])


def opened(client, clip) -> dict:
    response = upload(client, [("disc.mp4", clip)])
    assert response.status_code == 200, response.text
    return response.json()


def click(client, video, frame, x, y, label=1):
    response = client.post(f"/api/videos/{video}/click", json={"frame": frame, "x": x, "y": y, "label": label})
    assert response.status_code == 200, response.text
    return response.json()


def propagated(client, video, timeout=30.0) -> dict:
    response = client.post(f"/api/videos/{video}/propagate", json={})
    assert response.status_code == 200, response.text
    deadline = time.monotonic() + timeout
    while (job := client.get(f"/api/videos/{video}/progress").json())["running"]:
        assert time.monotonic() < deadline, f"propagation did not finish: {job}"
        time.sleep(0.05)
    return job


def mask(client, video, frame) -> np.ndarray:
    response = client.get(f"/api/videos/{video}/frames/{frame}/masks")
    assert response.status_code == 200, response.text
    objects = response.json()["objects"]
    assert [o["obj_id"] for o in objects] == [1]
    return rle_decode(objects[0]["mask"])


def test_click_propagate_scrub_correct_and_save(tmp_path, clip):
    client = make_client(tmp_path)
    state = opened(client, clip)
    video = state["video"]
    assert (state["frames"], state["width"], state["height"], state["fps"]) == (6, SIZE, SIZE, 10.0)
    state = click(client, video, 0, *centre(0))
    assert state["prompts"] == [{"frame": 0, "obj_id": 1, "point": [16.0, 20.0], "label": 1}]
    assert iou(mask(client, video, 0), truth(0)) > 0.8

    job = propagated(client, video)
    assert job["error"] is None and job["done"] == job["total"] == 6
    state = client.get(f"/api/videos/{video}").json()
    assert state["tracked"] == list(range(6)) and state["dirty_from"] is None
    before = mask(client, video, 1)
    assert iou(before, truth(1)) > 0.8
    assert not mask(client, video, 3).any()  # lost at the jump on frame 2

    state = click(client, video, 2, *centre(2))  # the correction
    assert state["dirty_from"] == 2
    job = propagated(client, video)
    assert job["error"] is None and job["start"] == 2 and job["total"] == 4  # frames 2..5 only
    for frame in (2, 3, 5):
        assert iou(mask(client, video, frame), truth(frame)) > 0.8, frame
    assert np.array_equal(mask(client, video, 1), before)

    painted = np.asarray(Image.open(io.BytesIO(client.get(f"/api/videos/{video}/frames/3.jpg").content)), float)
    bare = np.asarray(Image.open(io.BytesIO(client.get(f"/api/videos/{video}/frames/3.jpg?masks=0").content)), float)
    assert painted.shape == bare.shape == (SIZE, SIZE, 3)
    inside, outside = truth(3), ~truth(3)
    assert np.abs(painted - bare)[inside].mean() > 20 > np.abs(painted - bare)[outside].mean()

    response = client.post(f"/api/videos/{video}/save")
    assert response.status_code == 200, response.text
    saved = response.json()["saved"]
    assert saved["count"] == 6 and saved["untracked"] == 0 and saved["objects"] == [1]
    frames = sorted((tmp_path / "out" / "video" / "disc" / "frames").glob("*.png"))
    assert [p.name for p in frames] == [f"{i:05d}.png" for i in range(6)]
    for frame, path in enumerate(frames):
        ids = np.asarray(Image.open(path))
        assert np.array_equal(ids == 1, mask(client, video, frame)) and set(np.unique(ids)) <= {0, 1}
    overlay = FrameSource(saved["video"])
    assert len(overlay) == 6 and overlay.size() == (SIZE, SIZE)
    overlay.close()
    prompts = read_prompts(saved["prompts"])
    assert [(p["frame"], p["obj_id"]) for p in prompts] == [(0, 1), (2, 1)]
    assert json.loads((tmp_path / "out" / "video" / "disc" / "prompts.json").read_text())[1]["points"] == [[40, 44]]


def test_several_frames_open_in_name_order(tmp_path):
    client = make_client(tmp_path)
    names = [f"f{i}.png" for i in range(4)]
    files = [(name, _png(frame_image(i))) for i, name in enumerate(names)]
    state = upload(client, files[::-1]).json()  # the page may send them in any order
    assert state["frames"] == 4 and state["name"] == "f0"
    for i in (0, 3):
        shown = np.asarray(Image.open(io.BytesIO(
            client.get(f"/api/videos/{state['video']}/frames/{i}.jpg?masks=0").content)), float)
        assert np.abs(shown - frame_image(i)).mean() < 4  # JPEG
    state = click(client, state["video"], 3, *centre(3))
    assert iou(mask(client, state["video"], 3), truth(3)) > 0.8


def test_uploads_past_the_limits_are_refused_with_a_message(tmp_path, clip):
    client = make_client(tmp_path, max_upload_mb=0.05, max_video_frames=4)
    noise = np.random.default_rng(0).bytes(60_000)  # past 0.05 MB, inside the multipart slack
    response = upload(client, [("big.mp4", noise)])
    assert response.status_code == 413
    assert "big.mp4" in response.json()["detail"] and "0.05 MB" in response.json()["detail"]
    response = upload(client, [("disc.mp4", clip)])  # 6 frames
    assert response.status_code == 413
    assert "more than 4 frames" in response.json()["detail"] and "max_video_frames" in response.json()["detail"]
    response = upload(client, [("a.png", _png(frame_image(0))), ("b.png", _png(frame_image(0)[:40]))])
    assert response.status_code == 422 and "b.png is 64x40" in response.json()["detail"]
    response = upload(client, [("clip.mp4", b"these are notes, not a video")])
    assert response.status_code == 415 and "clip.mp4" in response.json()["detail"]
    response = upload(client, [("notes.txt", b"notes")])
    assert response.status_code == 415 and "video file" in response.json()["detail"]


def test_prompts_wait_for_a_running_propagation(tmp_path, clip):
    gate = threading.Event()
    client = make_client(tmp_path, SeedFillBackend(gate=gate))
    gate.set()
    video = opened(client, clip)["video"]
    click(client, video, 0, *centre(0))
    gate.clear()  # frame 1's embedding now waits: the propagation stays running
    assert client.post(f"/api/videos/{video}/propagate", json={}).json()["job"]["running"]
    response = client.post(f"/api/videos/{video}/click", json={"frame": 1, "x": 5, "y": 5, "label": 0})
    assert response.status_code == 409 and "propagation is running" in response.json()["detail"]
    assert client.post(f"/api/videos/{video}/save").status_code == 409
    gate.set()
    deadline = time.monotonic() + 30
    while client.get(f"/api/videos/{video}/progress").json()["running"]:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert client.get(f"/api/videos/{video}/progress").json()["done"] == 6


def test_bad_requests_name_the_problem(tmp_path, clip):
    client = make_client(tmp_path)
    video = opened(client, clip)["video"]
    response = client.post(f"/api/videos/{video}/propagate", json={})
    assert response.status_code == 400 and "click on an object first" in response.json()["detail"]
    response = client.post(f"/api/videos/{video}/click", json={"frame": 9, "x": 5, "y": 5})
    assert response.status_code == 400 and "frames 0..5" in response.json()["detail"]
    response = client.post(f"/api/videos/{video}/click", json={"frame": 0, "x": 500, "y": 5})
    assert response.status_code == 400 and "outside the 64x64 frame" in response.json()["detail"]
    assert client.get(f"/api/videos/{video}/frames/6.jpg").status_code == 404
    response = client.get("/api/videos/nope")
    assert response.status_code == 404 and "open the clip again" in response.json()["detail"]
    assert client.post(f"/api/videos/{video}/save").status_code == 400
    assert client.get("/video").status_code == 200 and "video.js" in client.get("/video").text


def _png(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()
