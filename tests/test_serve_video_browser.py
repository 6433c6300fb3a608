"""The video view in a real headless Chromium (the system's `chromium`, driven by Playwright), served by uvicorn on a
free loopback port: open an mp4, click on the disc, propagate, scrub with the slider, correct the frame where the
tracker lost the disc, propagate again, save.

Clip and model: tests/serve_video_fakes.py (a disc that jumps at frame 2; a colour seed-fill backend).
"""
from __future__ import annotations

import io
import json
import urllib.request

import numpy as np
import pytest
from PIL import Image

from serve_browser_harness import CHROMIUM, NO_CHROMIUM, browser_tab, served

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason=NO_CHROMIUM)
playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
uvicorn = pytest.importorskip("uvicorn", reason="seglab serve needs uvicorn (pip install 'seglab[serve]')")
pytest.importorskip("av", reason="videos need PyAV (pip install av)")

from seglab.serve.app import ServeOptions, create_app  # noqa: E402
from seglab.serve.engines import load_engine  # noqa: E402
from seglab.serve.masks import rle_decode  # noqa: E402
from serve_video_fakes import SeedFillBackend, centre, iou, truth, write_clip  # noqa: E402



@pytest.fixture
def server(tmp_path):
    """The server's URL; uvicorn runs in a thread and is stopped after the test."""
    with served(create_app(load_engine(SeedFillBackend()), ServeOptions(out=tmp_path / "out"))) as url:
        yield url


@pytest.fixture
def page():
    with browser_tab() as tab:
        yield tab


def screen_point(page, x: float, y: float) -> tuple[float, float]:
    box = page.locator("#frame").bounding_box()
    width, height = page.evaluate("[window.seglabVideo.state.width, window.seglabVideo.state.height]")
    return box["x"] + (x + 0.5) * box["width"] / width, box["y"] + (y + 0.5) * box["height"] / height


def fetch(url: str):
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.read()


def shown_image(server: str, page) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(fetch(server + page.get_attribute("#frame", "src")))), float)


def frame_mask(server: str, video: str, frame: int) -> np.ndarray:
    objects = json.loads(fetch(f"{server}/api/videos/{video}/frames/{frame}/masks"))["objects"]
    return rle_decode(objects[0]["mask"]) if objects else np.zeros(truth(0).shape, bool)


def wait_for_frame(page, frame: int) -> None:
    page.wait_for_function(f"document.body.dataset.frame === '{frame}' && "
                           f"document.getElementById('frame').getAttribute('src').includes('/frames/{frame}.jpg') && "
                           "document.getElementById('frame').complete && document.getElementById('frame').naturalWidth > 0")


def wait_for_propagation(page) -> None:
    page.wait_for_function("window.seglabVideo.state.job.total > 0 && !window.seglabVideo.state.job.running")


def test_click_propagate_scrub_correct_and_save(server, page, tmp_path):
    clip = write_clip(tmp_path / "disc.mp4")
    page.goto(server)
    page.click("a[href='/video']")  # the image view links to the video view
    page.wait_for_url(f"{server}/video")
    page.wait_for_function("window.seglabVideo.info !== null")
    page.set_input_files("#file", str(clip))
    page.wait_for_function("window.seglabVideo.state !== null")
    wait_for_frame(page, 0)
    assert page.evaluate("window.seglabVideo.state.frames") == 6
    assert page.get_attribute("#slider", "max") == "5"

    page.mouse.click(*screen_point(page, *centre(0)))
    page.wait_for_function("window.seglabVideo.state.prompts.length === 1")
    (x, y), = [p["point"] for p in page.evaluate("window.seglabVideo.state.prompts")]
    assert abs(x - centre(0)[0]) <= 1.5 and abs(y - centre(0)[1]) <= 1.5
    video = page.evaluate("window.seglabVideo.state.video")

    page.click("#propagate")
    wait_for_propagation(page)
    assert page.evaluate("window.seglabVideo.state.tracked.length") == 6
    page.locator("#slider").fill("1")  # scrub
    wait_for_frame(page, 1)
    painted = shown_image(server, page)
    bare = np.asarray(Image.open(io.BytesIO(fetch(f"{server}/api/videos/{video}/frames/1.jpg?masks=0"))), float)
    assert np.abs(painted - bare)[truth(1)].mean() > 20  # the frame shows its mask
    assert "(tracked)" in page.inner_text("#frame-label")

    page.locator("#slider").focus()
    page.keyboard.press("ArrowRight")  # the slider's own key: to frame 2, where the disc jumped and was lost
    wait_for_frame(page, 2)
    lost = shown_image(server, page)
    page.mouse.click(*screen_point(page, *centre(2)))  # the correction
    page.wait_for_function("window.seglabVideo.state.prompts.length === 2")
    assert page.inner_text("#propagate") == "Propagate from frame 2"
    page.wait_for_function("document.getElementById('frame').complete")
    assert np.abs(shown_image(server, page) - lost)[truth(2)].mean() > 20  # the overlay changed with the click
    page.click("#propagate")
    page.wait_for_function("window.seglabVideo.state.job.start === 2 && !window.seglabVideo.state.job.running")
    assert iou(frame_mask(server, video, 3), truth(3)) > 0.8
    assert page.inner_text("#propagate") == "Propagate"

    page.click("#save")
    page.wait_for_function("document.getElementById('message').textContent.startsWith('saved 6 frames')")
    assert len(list((tmp_path / "out" / "video" / "disc" / "frames").glob("*.png"))) == 6
    assert (tmp_path / "out" / "video" / "disc" / "disc_overlay.mp4").is_file()


def test_a_refused_clip_shows_the_server_message(server, page, tmp_path):
    page.goto(f"{server}/video")
    page.wait_for_function("window.seglabVideo.info !== null")
    notes = tmp_path / "notes.mp4"
    notes.write_text("these are notes, not a video")
    page.set_input_files("#file", str(notes))
    page.wait_for_selector("#message.error")
    message = page.inner_text("#message")
    assert "notes.mp4" in message and "HTTP 415" in message
