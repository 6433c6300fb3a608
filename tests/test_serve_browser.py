"""The annotation page in a real headless Chromium (the system's `chromium`, driven by Playwright), served by
uvicorn on a free loopback port: upload a real Oxford-IIIT Pet photo, click on the pet, wait for the overlay,
check the returned mask against the trimap, undo, and see a refused upload's message in the page.

Model: the flood-fill backend of tests/serve_flood_fill.py (no trained weights needed), on
Abyssinian_58, a photo where a colour flood fill from the middle of the cat covers it well (IoU
0.76 with the trimap's pet at tolerance 45; the test asks for 0.5). The page and server code do not
depend on the model: the same page drives seglab's click model or SAM.
"""
from __future__ import annotations

import io
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage as ndi

from serve_browser_harness import CHROMIUM, NO_CHROMIUM, browser_tab, screen_point, served
PET = Path(__file__).resolve().parents[2] / "shared" / "data" / "oxford-iiit-pet-subset"
IMAGE, TRIMAP = PET / "images" / "Abyssinian_58.jpg", PET / "annotations" / "trimaps" / "Abyssinian_58.png"

pytestmark = [
    pytest.mark.skipif(CHROMIUM is None, reason=NO_CHROMIUM),
    pytest.mark.skipif(not IMAGE.is_file(), reason=f"the shared Pet data is not at {PET}"),
]
playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
uvicorn = pytest.importorskip("uvicorn", reason="seglab serve needs uvicorn (pip install 'seglab[serve]')")

from seglab.serve.app import ServeOptions, create_app  # noqa: E402
from seglab.serve.engines import load_engine  # noqa: E402
from serve_flood_fill import FloodFillBackend  # noqa: E402



@pytest.fixture
def server(tmp_path):
    """The page's URL; uvicorn runs in a thread and is stopped after the test."""
    with served(create_app(load_engine(FloodFillBackend(tolerance=45.0)), ServeOptions(out=tmp_path / "out"))) as url:
        yield url


@pytest.fixture
def page():
    with browser_tab() as tab:
        yield tab


def pet_centre() -> tuple[int, int, np.ndarray]:
    """(x, y) deepest inside the trimap's pet (farthest from the background and the image border), and the pet."""
    pet = np.asarray(Image.open(TRIMAP)) == 1
    depth = ndi.distance_transform_edt(np.pad(pet, 1))[1:-1, 1:-1]
    y, x = np.unravel_index(depth.argmax(), pet.shape)
    return int(x), int(y), pet


def fetch_mask(url: str, session: str) -> np.ndarray:
    with urllib.request.urlopen(f"{url}/api/sessions/{session}/mask.png", timeout=30) as response:
        return np.asarray(Image.open(io.BytesIO(response.read()))) > 0


def test_click_on_a_pet_shows_its_mask_and_undo_removes_it(server, page):
    x, y, pet = pet_centre()
    page.goto(server)
    page.wait_for_function("window.seglab.info !== null")
    page.set_input_files("#file", str(IMAGE))
    page.wait_for_function("window.seglab.state !== null && document.getElementById('image').complete "
                           "&& document.getElementById('image').naturalWidth > 0")
    assert page.evaluate("[window.seglab.state.width, window.seglab.state.height]") == [pet.shape[1], pet.shape[0]]

    page.mouse.click(*screen_point(page, x, y))
    page.wait_for_function("window.seglab.state.area > 0")
    page.wait_for_function("document.getElementById('overlay').complete && "
                           "document.getElementById('overlay').src === window.seglab.state.overlay")
    state = page.evaluate("window.seglab.state")
    (px, py), = [p["point"] for p in state["prompts"]]
    assert abs(px - x) <= 1.5 and abs(py - y) <= 1.5 and state["prompts"][0]["label"] == 1
    mask = fetch_mask(server, state["session"])
    iou = (mask & pet).sum() / (mask | pet).sum()
    assert iou > 0.5, f"mask IoU with the trimap's pet is {iou:.2f}"
    assert "score" in page.inner_text("#stats")

    corner = screen_point(page, 5, 5)  # a right click on the background: a negative point
    page.mouse.click(*corner, button="right")
    page.wait_for_function("window.seglab.state.prompts.length === 2")
    assert page.evaluate("window.seglab.state.prompts[1].label") == 0

    page.click("#undo")
    page.wait_for_function("window.seglab.state.prompts.length === 1")
    page.click("#undo")
    page.wait_for_function("window.seglab.state.area === 0 && window.seglab.state.prompts.length === 0")
    assert not fetch_mask(server, state["session"]).any()
    assert page.is_disabled("#undo") and page.is_disabled("#save")


def test_a_refused_upload_shows_the_server_message(server, page, tmp_path):
    page.goto(server)
    page.wait_for_function("window.seglab.info !== null")
    notes = tmp_path / "notes.png"
    notes.write_text("these are notes, not a picture")
    page.set_input_files("#file", str(notes))
    page.wait_for_selector("#message.error")
    message = page.inner_text("#message")
    assert "notes.png: not an image file" in message and "HTTP 415" in message
