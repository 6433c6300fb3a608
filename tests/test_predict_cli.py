"""`seglab predict` end to end: outputs per image, batching, modes, TTA, probabilities, bad inputs."""
import numpy as np
import pytest
import torch
from PIL import Image

from seglab.cli import main
from seglab.data.io import read_image
from seglab.inference.predictor import InferenceOptions, Job, Predictor
from test_inference_common import save_image, smooth_image, tiny_checkpoint

SIZES = [(40, 30), (64, 64), (23, 57), (300, 90)]  # (width, height); 300 > 8 x 32: tiled under mode=auto


@pytest.fixture(scope="module")
def checkpoint():
    return tiny_checkpoint()


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("images")
    for i, (w, h) in enumerate(SIZES):
        save_image(root / f"img{i}.png", smooth_image(w, h, seed=i))
    save_image(root / "photo.jpg", smooth_image(50, 40, seed=9))
    return root


def run_predict(checkpoint, source, out, *args):
    assert main(["predict", f"model={checkpoint}", f"source={source}", f"out={out}", "verbose=false", *args]) == 0
    return out


def labels(out, stem):
    return np.asarray(Image.open(out / f"{stem}.png"))


def test_every_output_at_the_image_size(checkpoint, folder, tmp_path):
    out = run_predict(checkpoint, folder, tmp_path, "save_probs=true", "batch=3")
    for i, (w, h) in enumerate(SIZES):
        ids = Image.open(out / f"img{i}.png")
        assert ids.mode == "L" and ids.size == (w, h)
        assert set(np.unique(np.asarray(ids))) <= {0, 1, 2}
        for suffix in ("_color", "_overlay"):
            image = Image.open(out / f"img{i}{suffix}.png")
            assert image.mode == "RGB" and image.size == (w, h)
        probs = np.load(out / f"img{i}_probs.npy")
        assert probs.dtype == np.float16 and probs.shape == (3, h, w)
        assert np.allclose(probs.astype(np.float32).sum(0), 1, atol=5e-3)
        assert (probs.argmax(0) == np.asarray(ids)).mean() > 0.99  # float16 rounding can flip near-ties
    assert (out / "photo.png").exists() and not (out / "errors.txt").exists()


def test_batch_size_does_not_change_the_labels(checkpoint, folder, tmp_path):
    one = run_predict(checkpoint, folder, tmp_path / "b1", "batch=1")
    four = run_predict(checkpoint, folder, tmp_path / "b4", "batch=4")
    for i in range(len(SIZES)):
        assert (labels(one, f"img{i}") == labels(four, f"img{i}")).mean() > 0.999


def test_stretch_matches_the_training_pipeline(checkpoint, folder):
    """mode=stretch: the image decoded and stretched as in training, probabilities resized back, argmax."""
    from seglab.data.dataset import load_image

    predictor = Predictor(checkpoint, options=InferenceOptions(mode="stretch"))
    path = folder / "photo.jpg"
    got = predictor.predict_files([path])[0]
    x = torch.from_numpy(load_image(path, predictor.size))[None]
    probs = predictor.probs(x)
    in_one_piece = torch.nn.functional.interpolate(probs, size=got.shape, mode="bilinear", align_corners=False)
    assert (got == in_one_piece[0].argmax(0).numpy()).mean() > 0.999


def test_auto_tiles_only_much_larger_images_and_tiles_at_the_training_scale(checkpoint):
    predictor = Predictor(checkpoint)
    assert predictor.mode_for(256, 256) == "stretch" and predictor.mode_for(90, 257) == "tile"
    tiled = Predictor(checkpoint, options=InferenceOptions(mode="tile", tile=16, overlap=0.5, blend="constant"))
    image = smooth_image(100, 70)
    job = Job(image)
    ids = tiled.run([job])[0]
    # tiles of the 32 x 32 training view, not of the 100 x 70 image: stride 8, starts 0 8 16 per side
    assert ids.shape == (70, 100) and job.stats.tiles == 3 * 3
    probs = np.zeros((3, 70, 100), dtype=np.float32)
    assert np.array_equal(tiled.run([Job(image, probs_out=probs)])[0], ids)
    assert np.allclose(probs.sum(0), 1, atol=1e-5)


def test_stretch_and_tile_of_a_stretch_model_agree(checkpoint, tmp_path):
    """With the default tile (the training size) both modes see the same view: same probabilities."""
    image = smooth_image(700, 260, seed=4)
    out = {}
    for mode in ("stretch", "tile"):
        probs = np.zeros((3, 260, 700), dtype=np.float32)
        labels = Predictor(checkpoint, options=InferenceOptions(mode=mode)).run([Job(image, probs_out=probs)])[0]
        out[mode] = labels, probs
    assert np.abs(out["stretch"][1] - out["tile"][1]).max() < 1e-5
    assert (out["stretch"][0] == out["tile"][0]).mean() > 0.9999


def test_tta_runs_flips_and_scales_and_gives_probabilities(checkpoint, folder, tmp_path):
    out = run_predict(checkpoint, folder, tmp_path, "tta=true", "scales=[0.75,1,1.25]", "save_probs=true")
    probs = np.load(out / "img1_probs.npy").astype(np.float32)
    assert np.allclose(probs.sum(0), 1, atol=5e-3)
    plain = Predictor(checkpoint)
    flip_only = Predictor(checkpoint, options=InferenceOptions(tta=True, scales=[1]))
    x = torch.from_numpy(smooth_image(32, 32).transpose(2, 0, 1).copy())[None]
    want = (plain.logits(x).softmax(1) + plain.logits(x.flip(-1)).flip(-1).softmax(1)) / 2
    assert torch.allclose(flip_only.probs(x), want, atol=1e-5)


def test_bad_files_are_reported_and_the_rest_is_predicted(checkpoint, tmp_path, capsys):
    source = tmp_path / "mixed"
    save_image(source / "good.png", smooth_image(40, 30))
    (source / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (source / "empty.png").write_bytes(b"")
    (source / "notes.txt").write_text("not an image")
    save_image(source / "also_good.png", smooth_image(20, 50, seed=3))
    out = tmp_path / "out"
    assert main(["predict", f"model={checkpoint}", f"source={source}", f"out={out}", "batch=8"]) == 0
    assert (out / "good.png").exists() and (out / "also_good.png").exists()
    errors = (out / "errors.txt").read_text()
    assert "broken.jpg" in errors and "empty.png: file is empty" in errors
    assert "notes.txt: unsupported format '.txt'" in errors
    captured = capsys.readouterr()
    assert "predicted 2 of 5 images" in captured.out and "skipped:" in captured.err


def test_glob_source_and_single_file(checkpoint, folder, tmp_path):
    out = run_predict(checkpoint, f"{folder}/img*.png", tmp_path / "glob")
    assert sorted(p.name for p in out.glob("img?.png")) == [f"img{i}.png" for i in range(len(SIZES))]
    single = run_predict(checkpoint, folder / "photo.jpg", tmp_path / "one")
    assert Image.open(single / "photo.png").size == read_image(folder / "photo.jpg").size


@pytest.mark.parametrize("args,message", [(["mode=crop"], "mode='crop'"), (["blend=max"], "blend='max'"),
                                          (["overlap=1.5"], "overlap=1.5"), (["scales=[0]"], "scales")])
def test_bad_settings_fail_before_any_work(checkpoint, folder, tmp_path, args, message, capsys):
    assert main(["predict", f"model={checkpoint}", f"source={folder}", f"out={tmp_path}", *args]) == 1
    assert message in capsys.readouterr().err


@pytest.mark.slow
def test_compiled_predictions_match(checkpoint, folder, tmp_path):
    """compile=true (torch.compile, inductor freezing): ~30 s of compiling on 2 cores."""
    plain = run_predict(checkpoint, folder, tmp_path / "plain", "mode=stretch")
    compiled = run_predict(checkpoint, folder, tmp_path / "compiled", "mode=stretch", "compile=true")
    for i in range(len(SIZES)):
        assert (labels(plain, f"img{i}") == labels(compiled, f"img{i}")).mean() > 0.999
