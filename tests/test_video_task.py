"""`seglab val task=video` on a DAVIS-layout folder and `seglab track` on a clip, end to end, with a promptable
backend of known behaviour (the colour flood fill of test_video_tracker.py) standing in for a checkpoint."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import seglab.prompt.predictor
from seglab.cli import main
from seglab.data.video import load_sequences
from test_video_tracker import ColourBackend, clip, iou


@pytest.fixture
def colour_model(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "colour.pt"
    path.write_bytes(b"stand-in")
    monkeypatch.setattr(seglab.prompt.predictor, "load_backend", lambda p, **kw: ColourBackend())
    return path


def davis_folder(tmp_path: Path) -> tuple[Path, list]:
    """seqA: one object as DAVIS 2016 stores it (0/255); seqB: two objects with ids 1, 2 (DAVIS 2017)."""
    frames, truth = clip(tmp_path)
    root = tmp_path / "DAVIS"
    for seq, ids in (("seqA", {1: 255}), ("seqB", {1: 1, 2: 2})):
        images, annotations = root / "JPEGImages" / "480p" / seq, root / "Annotations" / "480p" / seq
        images.mkdir(parents=True)
        annotations.mkdir(parents=True)
        for t, objects in enumerate(truth):
            Image.open(frames / f"{t:05d}.png").save(images / f"{t:05d}.jpg", quality=95)
            ann = np.zeros(objects[1].shape, np.uint8)
            for obj, value in ids.items():
                ann[objects[obj]] = value
            Image.fromarray(ann).save(annotations / f"{t:05d}.png")
    return root, truth


def test_davis_layouts_are_read_as_released(tmp_path):
    root, truth = davis_folder(tmp_path)
    a, b = load_sequences(root)
    assert (a.name, a.binary, b.name, b.binary) == ("seqA", True, "seqB", False)
    assert set(np.unique(a.object_ids(3)).tolist()) == {0, 1}  # 255 is the object, not void
    assert np.array_equal(b.object_ids(3) == 2, truth[3][2])
    (root / "ImageSets" / "2017").mkdir(parents=True)
    (root / "ImageSets" / "2017" / "val.txt").write_text("seqB\n")
    assert [s.name for s in load_sequences(root, "val")] == ["seqB"]
    (root / "ImageSets" / "2017" / "val.txt").write_text("seqB\nseqC\n")
    with pytest.raises(Exception, match="seqC"):
        load_sequences(root, "val")


@pytest.mark.parametrize("given", ["mask", "click"])
def test_val_task_video_scores_the_tracked_objects(tmp_path, colour_model, given):
    root, _ = davis_folder(tmp_path)
    assert main(["val", "task=video", f"model={colour_model}", f"data={root}", f"video_prompt={given}",
                 f"out={tmp_path / 'val'}", "verbose=false"]) == 0
    result = json.loads((tmp_path / "val" / "val_val.json").read_text())
    assert result["num_videos"] == 2 and result["num_objects"] == 3
    # JPEG frames soften the discs' edges, which the colour rule follows to a pixel or so: J ~0.87 on r=8 discs
    assert result["j_and_f_mean"] > 0.9 and result["j_mean"] > 0.8 and result["f_mean"] > 0.95
    assert set(result["per_video"]) == {"seqA", "seqB"}
    assert result["tracked_frames"] == 2 * 11 and result["fps"] > 0
    assert result["video_prompt"] == given and result["tracker"] == "RepromptPropagator"


def test_track_writes_an_overlay_video_and_object_id_frames(tmp_path, colour_model):
    av = pytest.importorskip("av")
    frames, truth = clip(tmp_path)
    prompts = tmp_path / "prompts.json"
    Image.fromarray((truth[4][2] * 255).astype(np.uint8)).save(tmp_path / "green.png")
    prompts.write_text(json.dumps([{"frame": 4, "obj_id": 3, "points": [[24, 20]], "labels": [1]},
                                   {"frame": 4, "obj_id": 7, "mask": "green.png"}]))
    out = tmp_path / "track"
    assert main(["track", f"model={colour_model}", f"source={frames}", f"prompts={prompts}", f"out={out}",
                 "verbose=false"]) == 0
    with av.open(str(out / "frames_overlay.mp4")) as container:
        assert sum(1 for _ in container.decode(video=0)) == len(truth)
    for t, objects in enumerate(truth):  # forward from frame 4 and back to frame 0
        ids = np.asarray(Image.open(out / "frames" / f"{t:05d}.png"))
        assert iou(ids == 3, objects[1]) > 0.9 and iou(ids == 7, objects[2]) > 0.9, t


def test_track_gif_keeps_every_nth_frame_downscaled_with_the_objects_painted(tmp_path, colour_model):
    frames, truth = clip(tmp_path)
    prompts = tmp_path / "prompts.json"
    prompts.write_text(json.dumps([{"frame": 0, "obj_id": 1, "points": [[24, 20]], "labels": [1]}]))
    out = tmp_path / "track"
    assert main(["track", f"model={colour_model}", f"source={frames}", f"prompts={prompts}", f"out={out}",
                 "gif=32", "gif_step=3", "verbose=false"]) == 0
    gif = Image.open(out / "frames_overlay.gif")
    assert gif.n_frames == len(range(0, len(truth), 3))
    assert max(gif.size) == 32
    source = Image.open(frames / "00000.png")
    assert gif.size[0] * source.height == pytest.approx(gif.size[1] * source.width, rel=0.1)
    gif.seek(0)
    painted = np.asarray(gif.convert("RGB"), np.int16)
    plain = np.asarray(source.convert("RGB").resize(gif.size, Image.BILINEAR), np.int16)
    assert np.abs(painted - plain).sum(axis=2).max() > 60  # the object's colour is on the first frame


def test_track_writes_each_frame_before_tracking_the_next(tmp_path, colour_model, monkeypatch):
    """Streaming: when the tracker works on frame t (forward), frame t-1's PNG is on disk already, so nothing
    of the clip's results has to be held until the end."""
    import seglab.video.tracker as tracker_module

    frames, truth = clip(tmp_path)
    prompts = tmp_path / "prompts.json"
    prompts.write_text(json.dumps([{"frame": 3, "obj_id": 1, "points": [[24, 20]], "labels": [1]}]))
    out = tmp_path / "track"
    original = tracker_module.Tracker.propagate
    seen = []

    def watched(self, state, start=None, reverse=False, max_frames=None):
        for frame, ids, masks in original(self, state, start, reverse, max_frames):
            if not reverse and frame > 3:
                seen.append((frame, (out / "frames" / f"{frame - 1:05d}.png").is_file()))
            yield frame, ids, masks

    monkeypatch.setattr(tracker_module.Tracker, "propagate", watched)
    assert main(["track", f"model={colour_model}", f"source={frames}", f"prompts={prompts}", f"out={out}",
                 "verbose=false"]) == 0
    assert [f for f, _ in seen] == list(range(4, len(truth))) and all(written for _, written in seen)
    assert all((out / "frames" / f"{t:05d}.png").is_file() for t in range(len(truth)))


def test_track_names_a_bad_prompts_file(tmp_path, colour_model, capsys):
    frames, _ = clip(tmp_path, n=3)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"frame": 0, "obj_id": 1, "point": [[1, 1]]}]))
    assert main(["track", f"model={colour_model}", f"source={frames}", f"prompts={bad}"]) != 0
    assert "bad.json entry 0: unknown field(s) point" in capsys.readouterr().err
    bad.write_text(json.dumps([{"frame": 9, "obj_id": 1, "points": [[1, 1]], "labels": [1]}]))
    assert main(["track", f"model={colour_model}", f"source={frames}", f"prompts={bad}"]) != 0
    assert "frames 0..2" in capsys.readouterr().err
