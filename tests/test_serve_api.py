"""`seglab serve`'s JSON API through FastAPI's TestClient: upload limits, clicks / boxes -> masks, undo / clear /
next object, save -> files seglab's instance readers open, semantic predictions, the default host.

The promptable model is the flood-fill backend of tests/serve_flood_fill.py (real, deterministic
behaviour): on an image of two flat-coloured discs on grey, a click on a disc must give that disc.
"""
from __future__ import annotations

import base64
import io
import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("fastapi", reason="seglab serve needs fastapi (pip install 'seglab[serve]')")
pytest.importorskip("multipart", reason="seglab serve needs python-multipart (pip install 'seglab[serve]')")
from fastapi.testclient import TestClient  # noqa: E402
from pycocotools import mask as mask_utils  # noqa: E402

from seglab.cli import main  # noqa: E402
from seglab.config import make_config  # noqa: E402
from seglab.data.instance import open_instance_split, verify_split  # noqa: E402
from seglab.serve import engines, mode  # noqa: E402
from seglab.serve.app import ServeOptions, create_app  # noqa: E402
from seglab.serve.engines import load_engine  # noqa: E402
from seglab.serve.masks import instance_ids, rle_decode  # noqa: E402
from serve_flood_fill import SCORES, FloodFillBackend  # noqa: E402

SIZE = (64, 72)  # height, width
DISC_A, DISC_B, RADIUS = (20, 18), (50, 44), 10  # (x, y) centres


def disc(centre, radius=RADIUS, shape=SIZE):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (xx - centre[0]) ** 2 + (yy - centre[1]) ** 2 <= radius ** 2


def two_discs() -> np.ndarray:
    image = np.full((*SIZE, 3), 120, np.uint8)
    image[disc(DISC_A)] = (220, 30, 30)
    image[disc(DISC_B)] = (30, 40, 220)
    return image


def encode(image: np.ndarray, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format=fmt)
    return buffer.getvalue()


def from_data_url(url: str) -> np.ndarray:
    """The pixels of a "data:image/png;base64,..." URL."""
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))))


def iou(a, b) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


@pytest.fixture
def backend():
    return FloodFillBackend(tolerance=80.0)  # half the disc-to-grey colour distance: edges split in the middle


@pytest.fixture
def client(tmp_path, backend):
    app = create_app(load_engine(backend), ServeOptions(out=tmp_path / "out", max_upload_mb=0.05))
    return TestClient(app)


def upload(client, data: bytes, name: str = "discs.png"):
    return client.post("/api/sessions", files={"file": (name, data, "application/octet-stream")})


def opened(client, image=None, name="discs.png") -> str:
    response = upload(client, encode(two_discs() if image is None else image), name)
    assert response.status_code == 200, response.text
    return response.json()["session"]


def click(client, session, x, y, label=1):
    response = client.post(f"/api/sessions/{session}/click", json={"x": x, "y": y, "label": label})
    assert response.status_code == 200, response.text
    return response.json()


def post(client, session, action):
    response = client.post(f"/api/sessions/{session}/{action}")
    assert response.status_code == 200, response.text
    return response.json()


# --- uploads ------------------------------------------------------------------------------------
def test_a_file_over_the_limit_is_413_naming_the_limit(client):
    noise = np.random.default_rng(0).integers(0, 256, (160, 160, 3), dtype=np.uint8)  # ~77 KB PNG
    big = encode(noise)
    assert 0.05 * 2**20 < len(big) < 0.05 * 2**20 + 64 * 1024  # past the limit, inside the multipart slack
    response = upload(client, big, "noise.png")
    assert response.status_code == 413
    assert "noise.png" in response.json()["detail"] and "0.05 MB" in response.json()["detail"]
    huge = encode(np.random.default_rng(1).integers(0, 256, (400, 400, 3), dtype=np.uint8))  # refused by length
    response = upload(client, huge, "huge.png")
    assert response.status_code == 413 and "0.05 MB" in response.json()["detail"]


def test_a_file_that_is_not_an_image_is_415_naming_what_it_is(client):
    response = upload(client, b"%PDF-1.4 not an image at all", "report.pdf")
    assert response.status_code == 415
    detail = response.json()["detail"]
    assert "report.pdf" in detail and "not an image" in detail and "PNG" in detail and "JPEG" in detail


def test_an_image_type_the_page_does_not_take_is_415_naming_it(client):
    buffer = io.BytesIO()
    Image.fromarray(two_discs()).save(buffer, format="ICO")
    response = upload(client, buffer.getvalue(), "icon.ico")
    assert response.status_code == 415 and "ICO" in response.json()["detail"]


def test_a_truncated_image_is_400_saying_it_cannot_be_decoded(client):
    data = encode(two_discs(), "JPEG")
    response = upload(client, data[: len(data) // 2], "cut.jpg")
    assert response.status_code == 400
    assert "cut.jpg" in response.json()["detail"] and "cannot be decoded" in response.json()["detail"]
    assert upload(client, b"", "empty.png").status_code == 400


def test_exif_rotation_is_applied_as_seglab_reads_images(client, tmp_path):
    image = Image.fromarray(two_discs())
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated 90 degrees: shown as 64 wide, 72 high
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", exif=exif)
    state = upload(client, buffer.getvalue(), "turned.jpg").json()
    assert (state["width"], state["height"]) == (SIZE[0], SIZE[1])


# --- prompts ------------------------------------------------------------------------------------
def test_a_click_gives_the_object_under_it_as_rle_and_png(client):
    session = opened(client)
    state = click(client, session, *DISC_A)
    mask = rle_decode(state["mask"])
    assert mask.shape == SIZE and iou(mask, disc(DISC_A)) > 0.85 and not (mask & disc(DISC_B)).any()
    assert state["area"] == mask.sum() and state["score"] == max(SCORES)  # best of the first click's three
    png = np.asarray(Image.open(io.BytesIO(client.get(f"/api/sessions/{session}/mask.png").content)))
    assert np.array_equal(png > 0, mask) and set(np.unique(png)) <= {0, 255}
    overlay = from_data_url(state["overlay"])
    assert overlay.shape == (*SIZE, 4) and np.array_equal(overlay[..., 3] > 0, mask)


def test_positive_and_negative_clicks_add_and_remove_regions(client):
    session = opened(client)
    click(client, session, *DISC_A)
    both = rle_decode(click(client, session, *DISC_B)["mask"])
    assert iou(both, disc(DISC_A) | disc(DISC_B)) > 0.85
    only_a = rle_decode(click(client, session, *DISC_B, label=0)["mask"])
    assert iou(only_a, disc(DISC_A)) > 0.85 and not (only_a & disc(DISC_B)).any()
    state = post(client, session, "undo")  # the negative click undone: both discs again
    assert np.array_equal(rle_decode(state["mask"]), both) and len(state["prompts"]) == 2


def test_a_box_gives_the_object_inside_it(client):
    session = opened(client)
    x, y = DISC_B
    state = client.post(f"/api/sessions/{session}/box", json={"box": [x + 14, y + 13, x - 13, y - 14]}).json()
    assert state["prompts"] == [{"box": [x - 13, y - 14, x + 14, y + 13]}]  # corners put in order
    assert iou(rle_decode(state["mask"]), disc(DISC_B)) > 0.85


def test_undo_clear_and_next_object(client):
    session = opened(client)
    click(client, session, *DISC_A)
    state = post(client, session, "undo")
    assert state["mask"] is None and state["area"] == 0 and state["prompts"] == []
    assert not np.asarray(Image.open(io.BytesIO(client.get(f"/api/sessions/{session}/mask.png").content))).any()
    click(client, session, *DISC_A)
    state = post(client, session, "next")
    assert state["objects"] == 1 and state["mask"] is None
    state = click(client, session, *DISC_B)
    assert state["objects"] == 1 and iou(rle_decode(state["mask"]), disc(DISC_B)) > 0.85
    state = post(client, session, "clear")
    assert state["objects"] == 1 and state["mask"] is None
    state = post(client, session, "undo")  # nothing being drawn: the finished object is reopened
    assert state["objects"] == 0 and iou(rle_decode(state["mask"]), disc(DISC_A)) > 0.85


def test_the_image_is_embedded_once_and_sessions_are_independent(client, backend):
    first, second = opened(client), opened(client)
    assert backend.embedded == 2
    for _ in range(3):
        click(client, first, *DISC_A)
    assert backend.embedded == 2  # clicks reuse the cached embedding
    assert post(client, second, "undo")["mask"] is None  # the other image has nothing drawn
    assert len(post(client, first, "undo")["prompts"]) == 2


def test_bad_prompts_and_unknown_sessions_are_clear_errors(client):
    session = opened(client)
    response = client.post(f"/api/sessions/{session}/click", json={"x": 500, "y": 3, "label": 1})
    assert response.status_code == 400 and "outside the 72x64 image" in response.json()["detail"]
    response = client.post(f"/api/sessions/{session}/click", json={"x": 5, "y": 3, "label": 7})
    assert response.status_code == 400 and "label=7" in response.json()["detail"]
    response = client.post(f"/api/sessions/{session}/box", json={"box": [5, 5, 5.5, 30]})
    assert response.status_code == 400 and "less than a pixel" in response.json()["detail"]
    assert client.post("/api/sessions/nope/undo").status_code == 404
    response = client.post(f"/api/sessions/{session}/save")
    assert response.status_code == 400 and "nothing to save" in response.json()["detail"]


# --- saving ---------------------------------------------------------------------------------------
def test_save_writes_a_folder_seglab_reads_as_instances_and_as_coco(client, tmp_path):
    session = opened(client, name="my discs.png")
    first = rle_decode(click(client, session, *DISC_A)["mask"])
    post(client, session, "next")
    second = rle_decode(click(client, session, *DISC_B)["mask"])  # saved while still being drawn
    client.post(f"/api/sessions/{session}/save")
    saved = client.post(f"/api/sessions/{session}/save").json()["saved"]  # saving again replaces, never adds
    out = tmp_path / "out"
    assert saved["objects"] == 2 and saved["mask"] == str(out / "masks" / "my_discs.png")

    split = open_instance_split(out, "all")
    assert split.format == "instance_folder" and [item.name for item in split.items] == ["my_discs"]
    instances = split.items[0].load()
    assert np.array_equal(instances.masks, np.stack([first, second])) and list(instances.labels) == [0, 0]
    assert not verify_split(split).problems
    assert main(["verify", f"data={out}", "task=instance"]) == 0

    coco = json.loads((out / "instances.json").read_text())
    assert len(coco["images"]) == 1 and len(coco["annotations"]) == 2
    decoded = [mask_utils.decode({**a["segmentation"], "counts": a["segmentation"]["counts"].encode()})
               for a in coco["annotations"]]
    assert all(np.array_equal(d.astype(bool), m) for d, m in zip(decoded, (first, second)))
    as_coco = tmp_path / "coco"  # the same file where seglab's COCO reader looks for a split
    shutil.copytree(out / "images", as_coco / "images")
    (as_coco / "annotations").mkdir()
    shutil.copy(out / "instances.json", as_coco / "annotations" / "instances_all.json")
    coco_split = open_instance_split(as_coco, "all")
    assert coco_split.format == "coco"
    assert np.array_equal(coco_split.items[0].load().masks, instances.masks)


def test_overlapping_objects_keep_the_earlier_object_pixels():
    a, b = disc((20, 20), 12), disc((30, 20), 12)
    ids = instance_ids([a, b, a & b], SIZE)  # the third lies inside the first two: nothing left, dropped
    assert ids.max() == 2 and np.array_equal(ids == 1, a) and np.array_equal(ids == 2, b & ~a)


def test_images_are_picked_from_the_source_folder_by_listed_name_only(tmp_path, backend):
    source = tmp_path / "photos"
    (source / "sub").mkdir(parents=True)
    (source / "sub" / "discs.png").write_bytes(encode(two_discs()))
    (source / "notes.txt").write_text("not an image")
    client = TestClient(create_app(load_engine(backend), ServeOptions(out=tmp_path / "out", source=source)))
    assert client.get("/api/info").json()["source"] == ["sub/discs.png"]
    state = client.post("/api/sessions/source", json={"name": "sub/discs.png"}).json()
    assert state["name"] == "discs" and iou(rle_decode(click(client, state["session"], *DISC_A)["mask"]),
                                            disc(DISC_A)) > 0.85
    assert client.post("/api/sessions/source", json={"name": "../photos/sub/discs.png"}).status_code == 404


# --- semantic checkpoints: the prediction overlay ----------------------------------------------------
def test_a_semantic_checkpoint_shows_its_prediction(tmp_path):
    from seglab.data.spec import ClassTable
    from seglab.engine.checkpoint import atomic_save, make_checkpoint
    from seglab.inference.predictor import Job, Predictor
    from seglab.models import build_model

    torch.manual_seed(0)
    arch = {"name": "unet", "args": {"num_classes": 3, "width": 4, "depth": 2}}
    classes = ClassTable(["background", "red", "blue"], [(0, 0, 0), (200, 0, 0), (0, 0, 200)], 255)
    preprocess = {"mean": [0.5] * 3, "std": [0.25] * 3, "resize": "stretch", "size": [32, 32]}
    model = build_model(arch["name"], arch["args"])
    atomic_save(make_checkpoint(model, arch, classes, preprocess, {}, epoch=1, metrics={}), tmp_path / "best.pt")

    client = TestClient(create_app(load_engine(tmp_path), ServeOptions(out=tmp_path / "out")))
    assert client.get("/api/info").json()["task"] == "semantic"
    state = upload(client, encode(two_discs())).json()
    assert state["task"] == "semantic" and state["clicks"] is False
    labels = Predictor(tmp_path / "best.pt").run([Job(two_discs())])[0]
    shares = {e["name"]: e["share"] for e in state["prediction"]["legend"]}
    for k, name in enumerate(classes.names):
        assert shares[name] == pytest.approx((labels == k).mean(), abs=1e-4)
    overlay = from_data_url(state["prediction"]["overlay"])
    assert np.array_equal(overlay[..., 3] > 0, labels != 0)  # background left clear
    response = client.post(f"/api/sessions/{state['session']}/click", json={"x": 3, "y": 3, "label": 1})
    assert response.status_code == 400 and "promptable" in response.json()["detail"]


# --- the mode: host, port, URL ---------------------------------------------------------------------
def test_the_server_binds_loopback_by_default_and_warns_for_every_interface(monkeypatch, capsys, backend):
    assert make_config(mode="serve").host == "127.0.0.1"
    calls = []
    monkeypatch.setattr(engines, "load_engine", lambda *args: engines.PromptEngine(backend))
    import uvicorn

    monkeypatch.setattr(uvicorn, "run", lambda app, host, port, **kw: calls.append((host, port)))
    assert main(["serve", "model=flood.pt", "port=8123"]) == 0
    out = capsys.readouterr()
    assert calls == [("127.0.0.1", 8123)] and "http://127.0.0.1:8123/" in out.out and "WARNING" not in out.err
    assert main(["serve", "model=flood.pt", "host=0.0.0.0", "port=0"]) == 0
    out = capsys.readouterr()
    host, port = calls[-1]
    assert host == "0.0.0.0" and 0 < port < 65536 and "WARNING host=0.0.0.0" in out.err
    assert f"http://127.0.0.1:{port}/" in out.out


def test_serve_needs_a_model_and_says_so(capsys):
    assert main(["serve"]) == 1
    assert "serve needs model=" in capsys.readouterr().err
    assert main(["serve", "model=nowhere.pt"]) == 1
    assert "nowhere.pt" in capsys.readouterr().err
    assert main(["serve", "model=x.pt", "port=70000"]) == 1
    assert mode.url_of("::1", 80) == "http://[::1]:80/"


# --- seglab's click model (seglab/prompt/click_backend.py) behind the same API ----------------------
def test_a_click_model_checkpoint_is_served_as_a_promptable_model(tmp_path):
    pytest.importorskip("seglab.prompt.click_backend", reason="seglab's click model is not in this checkout")
    from seglab.data.spec import ClassTable
    from seglab.engine.checkpoint import atomic_save, make_checkpoint
    from seglab.models import build_model

    torch.manual_seed(0)
    arch = {"name": "click_seg", "args": {"num_classes": 1, "channels": 16}}
    preprocess = {"mean": [0.5] * 3, "std": [0.5] * 3, "resize": "longer_side_square", "size": 64}
    model = build_model(arch["name"], arch["args"])  # untrained: this checks the wiring, not the quality
    atomic_save(make_checkpoint(model, arch, ClassTable(["object"], [(220, 60, 60)]), preprocess, {}, epoch=1,
                                metrics={}, task="prompt"), tmp_path / "click.pt")
    engine = load_engine(tmp_path / "click.pt", "cpu")
    assert engine.task == "prompt" and engine.clicks
    client = TestClient(create_app(engine, ServeOptions(out=tmp_path / "out")))
    session = opened(client)
    state = click(client, session, *DISC_A)
    assert len(state["prompts"]) == 1 and state["score"] is not None
    mask = rle_decode(state["mask"]) if state["mask"] else np.zeros(SIZE, bool)
    assert mask.shape == SIZE and state["area"] == mask.sum()
    assert post(client, session, "undo")["mask"] is None


def test_an_instance_checkpoint_shows_its_confident_instances():
    from types import SimpleNamespace

    from seglab.data.spec import ClassTable
    from seglab.inference.instance import InstanceOptions, InstancePrediction

    ids = np.zeros(SIZE, np.int32)
    ids[disc(DISC_A)], ids[disc(DISC_B)] = 1, 2
    found = InstancePrediction(ids, np.array([0.9, 0.3]), np.array([1, 0]))  # the second below min_score
    engine = engines.InstanceEngine.__new__(engines.InstanceEngine)  # the model stubbed: what is drawn is tested
    engine.name, engine.model = "stub.pt", SimpleNamespace(
        classes=ClassTable(["cat", "dog"], [(0, 0, 0), (0, 0, 0)]), options=InstanceOptions(min_score=0.5),
        predict=lambda rgb: found)
    shown = engine.prediction(two_discs())
    assert [e["name"] for e in shown["legend"]] == ["dog 0.90"]
    overlay = from_data_url(shown["overlay"])
    assert np.array_equal(overlay[..., 3] > 0, disc(DISC_A))
