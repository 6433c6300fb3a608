"""`seglab predict` on videos: overlay video back at the source rate, per-frame masks on request."""
import numpy as np
import pytest
from PIL import Image

from seglab.cli import main
from seglab.inference.predictor import Job, Predictor
from test_inference_common import smooth_image, tiny_checkpoint

av = pytest.importorskip("av")
FRAMES, WIDTH, HEIGHT = 7, 63, 48  # an odd width: the writer pads to even sides for yuv420p


def write_video(path, frames=FRAMES, rate=10):
    container = av.open(str(path), "w")
    stream = container.add_stream("mpeg4", rate=rate)
    stream.width, stream.height, stream.pix_fmt = WIDTH + 1, HEIGHT, "yuv420p"
    for i in range(frames):
        image = np.roll(smooth_image(WIDTH + 1, HEIGHT, seed=1), 3 * i, axis=1)
        for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    container.close()
    return path


def decoded_frames(path):
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(container.streams.video[0])]


def test_video_frames_overlays_and_masks(tmp_path):
    source = write_video(tmp_path / "clip.mp4")
    out = tmp_path / "out"
    assert main(["predict", f"model={tiny_checkpoint()}", f"source={source}", f"out={out}", "save_frames=true",
                 "save_probs=true", "batch=3", "verbose=false"]) == 0
    with av.open(str(out / "clip_overlay.mp4")) as container:
        stream = container.streams.video[0]
        assert stream.average_rate == 10 and (stream.width, stream.height) == (WIDTH + 1, HEIGHT)
        assert sum(1 for _ in container.decode(stream)) == FRAMES
    masks = sorted((out / "clip_frames").glob("clip_*.png"))
    assert [m.name for m in masks] == [f"clip_{i:06d}.png" for i in range(FRAMES)]
    predictor = Predictor(tiny_checkpoint())
    frames = decoded_frames(source)
    want = predictor.run([Job(f) for f in frames])
    for mask, labels in zip(masks, want):
        assert np.array_equal(np.asarray(Image.open(mask)), labels)
    probs = np.load(out / "clip_frames" / "clip_000003_probs.npy")
    assert probs.shape == (3, HEIGHT, WIDTH + 1)


def test_a_broken_video_is_reported_and_images_still_predicted(tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    (source / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 truncated")
    Image.fromarray(smooth_image(30, 20)).save(source / "still.png")
    write_video(source / "ok.mp4", frames=2)
    out = tmp_path / "out"
    assert main(["predict", f"model={tiny_checkpoint()}", f"source={source}", f"out={out}", "verbose=false"]) == 0
    assert (out / "still.png").exists() and (out / "ok_overlay.mp4").exists()
    assert "broken.mp4" in (out / "errors.txt").read_text()
