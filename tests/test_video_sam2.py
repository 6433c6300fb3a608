"""Official SAM 2.1 checkpoints through seglab.video.Tracker (seglab/video/sam2_memory.py): a reduced SAM 2.1
tiny (shallower trunk, 256 px input) with random weights, saved as an official checkpoint, tracked by seglab
on a streamed folder of JPEG frames, equal to sam2's own SAM2VideoPredictor on the same clip."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.transforms.v2 import functional as TF

from seglab.prompt.sam2_official import MEAN, SAM2_CONFIGS, STD, build
from seglab.video import Tracker
from seglab.video.propagator_registry import propagator_for
from seglab.video.sam2_memory import Sam2MemoryPropagator, fill_holes

pytest.importorskip("sam2")
from sam2.build_sam import build_sam2_video_predictor

SIDE = 256  # the model's input side; frames of this size are fed unresized by both sides
REDUCED = ("++model.image_encoder.trunk.stages=[1,1,2,1]", "++model.image_encoder.trunk.global_att_blocks=[3]",
           f"++model.image_size={SIDE}")
SHORT_MEMORY = ("++model.num_maskmem=3", "++model.max_obj_ptrs_in_encoder=4")
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA"))]
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # sam2 warns that its hole-filling kernel is not built


def models(tmp_path: Path, device: str, overrides: tuple[str, ...] = ()):
    """seglab's Tracker over the checkpoint file, and sam2's video predictor with the same weights."""
    overrides = REDUCED + overrides
    torch.manual_seed(0)
    model = build("sam2.1_hiera_t", overrides)
    path = tmp_path / "sam2.1_reduced.pt"
    torch.save({"model": model.state_dict()}, path)
    tracker = Tracker(path, device=device, model_type="sam2.1_hiera_t", overrides=overrides)
    official = build_sam2_video_predictor(SAM2_CONFIGS["sam2.1_hiera_t"][0], None, device=device,
                                          hydra_overrides_extra=list(overrides))
    official.load_state_dict(model.state_dict())
    official.add_all_frames_to_correct_as_cond = True  # a prompted frame is a conditioning memory (seglab's rule)
    # sam2 fills holes with a CUDA kernel it skips when not built; seglab fills them everywhere (scipy)
    try:
        from sam2 import _C  # noqa: F401
    except ImportError:
        official.fill_hole_area = tracker.propagator.fill_hole_area = 0
    return tracker, official


def clip(tmp_path: Path, n: int, size=(SIDE, SIDE)) -> Path:
    """A red disc moving right and a green one moving left on noise, as JPEG frames 00000.jpg ..."""
    height, width = size
    folder = tmp_path / f"clip{n}_{height}x{width}"
    folder.mkdir()
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:height, :width] / max(size) * SIDE
    for t in range(n):
        frame = rng.integers(90, 150, (height, width, 3)).astype(np.uint8)
        frame[(xx - 60 - 12 * t) ** 2 + (yy - 80) ** 2 < 900] = (220, 40, 40)
        frame[(xx - 190 + 10 * t) ** 2 + (yy - 170) ** 2 < 700] = (40, 200, 40)
        Image.fromarray(frame).save(folder / f"{t:05d}.jpg", quality=95)
    return folder


def same(ours: np.ndarray, theirs: torch.Tensor, where: str) -> None:
    theirs = (theirs[:, 0] > 0).cpu().numpy()
    assert ours.shape == theirs.shape, where
    assert np.array_equal(ours, theirs), f"{where}: {int((ours != theirs).sum())} pixels differ"


def same_passes(tracker, state, official, session, **where) -> int:
    """One propagation by both; the number of frames compared."""
    ours = list(tracker.propagate(state, **where))
    theirs = {f: m for f, _, m in official.propagate_in_video(session, start_frame_idx=where.get("start"),
                                                              reverse=where.get("reverse", False))}
    for frame, obj_ids, masks in ours:
        assert obj_ids == session["obj_ids"]
        same(masks, theirs[frame], f"{where} frame {frame}")
    assert [f for f, _, _ in ours] == list(theirs)
    return len(ours)


@pytest.mark.parametrize("device", DEVICES)
def test_two_objects_correction_and_reverse_equal_sam2_video_predictor(tmp_path, device):
    tracker, official = models(tmp_path, device)
    assert isinstance(tracker.propagator, Sam2MemoryPropagator)
    folder = clip(tmp_path, 6)
    state, session = tracker.init_state(folder), official.init_state(str(folder))
    # one object, prompted with a click on frame 2, forward then backward
    _, _, ours = tracker.add_prompt(state, frame=2, obj_id=1, points=[[60, 80]], labels=[1])
    _, _, theirs = official.add_new_points_or_box(session, 2, 1, points=[[60, 80]], labels=[1])
    same(ours, theirs, "click on frame 2")
    assert same_passes(tracker, state, official, session, start=2) == 4
    assert same_passes(tracker, state, official, session, start=2, reverse=True) == 3
    # a second object by its box; a correction (a background click) on frame 4, re-propagated from there
    tracker.reset_state(state)
    official.reset_state(session)
    for obj_id, box in ((1, [30, 50, 90, 110]), (2, [160, 140, 220, 200])):
        _, _, ours = tracker.add_prompt(state, frame=0, obj_id=obj_id, box=box)
        _, _, theirs = official.add_new_points_or_box(session, 0, obj_id, box=box)
        same(ours, theirs, f"box of object {obj_id}")
    assert same_passes(tracker, state, official, session, start=0) == 6
    _, _, ours = tracker.add_prompt(state, frame=4, obj_id=1, points=[[108, 80]], labels=[0])
    _, _, theirs = official.add_new_points_or_box(session, 4, 1, points=[[108, 80]], labels=[0],
                                                  clear_old_points=False)
    same(ours, theirs, "correction on frame 4")
    assert 4 in state.memory["objects"][1].cond  # the correction is that frame's memory now
    assert same_passes(tracker, state, official, session, start=4) == 2
    assert same_passes(tracker, state, official, session, start=4, reverse=True) == 5


def test_mask_prompts_and_clicks_on_frames_of_another_size_equal_sam2(tmp_path):
    """Frames of 96 x 128 px: sam2 is given seglab's resized frames (its own loader resizes with PIL,
    seglab with the image backend's torch transform; that is the one difference), and then the masks,
    point scaling and resizing back to the frame are equal."""
    tracker, official = models(tmp_path, "cpu")
    folder = clip(tmp_path, 5, size=(96, 128))
    state, session = tracker.init_state(folder), official.init_state(str(folder))
    with torch.inference_mode():  # seglab's frame preprocessing, fed to sam2
        for i in range(len(state.frames)):
            x = torch.from_numpy(state.frames[i]).permute(2, 0, 1).float().div(255)
            session["images"][i] = TF.normalize(TF.resize(x, [SIDE, SIDE], antialias=True), MEAN, STD)
    session["cached_features"].clear()
    yy, xx = np.mgrid[:96, :128]
    disc = (xx - 30) ** 2 + (yy - 40) ** 2 < 300
    _, _, ours = tracker.add_prompt(state, frame=1, obj_id=5, mask=disc)
    _, _, theirs = official.add_new_mask(session, 1, 5, disc)
    same(ours, theirs, "mask prompt")
    for clicks in ([[95.5, 66.2]], [[101.0, 60.0]]):  # two clicks, the second added to the first
        _, _, ours = tracker.add_prompt(state, frame=1, obj_id=7, points=clicks, labels=[1])
        _, _, theirs = official.add_new_points_or_box(session, 1, 7, points=clicks, labels=[1], clear_old_points=False)
        same(ours, theirs, f"clicks {clicks}")
    assert same_passes(tracker, state, official, session, start=1) == 4
    assert same_passes(tracker, state, official, session, start=1, reverse=True) == 2


def test_the_memory_bank_stays_bounded_on_a_longer_clip(tmp_path):
    """num_maskmem=3 and 4 object pointers: on 12 frames the bank keeps the prompted frame, the last 2
    frames' features and the last 3 frames' pointers, and the masks still equal sam2's (which keeps all)."""
    tracker, official = models(tmp_path, "cpu", SHORT_MEMORY)
    model = tracker.backend.model
    assert (model.num_maskmem, model.max_obj_ptrs_in_encoder) == (3, 4)
    folder = clip(tmp_path, 12)
    state, session = tracker.init_state(folder, cache=2), official.init_state(str(folder))
    tracker.add_prompt(state, frame=0, obj_id=1, points=[[60, 80]], labels=[1])
    official.add_new_points_or_box(session, 0, 1, points=[[60, 80]], labels=[1])
    theirs = {f: m for f, _, m in official.propagate_in_video(session)}
    most_features = most_pointers = 0
    for frame, _, masks in tracker.propagate(state):
        same(masks, theirs[frame], f"frame {frame}")
        bank = state.memory["objects"][1]
        with_features = [f for f, out in bank.recent.items() if out["maskmem_features"] is not None]
        assert len(with_features) <= model.num_maskmem - 1 and len(bank.cond) == 1
        assert len(bank.recent) <= model.max_obj_ptrs_in_encoder - 1
        most_features, most_pointers = max(most_features, len(with_features)), max(most_pointers, len(bank.recent))
        assert len(state.frames._memory) <= 2  # frames streamed from the folder
    assert (most_features, most_pointers) == (2, 3)  # the bounds are reached, not just respected
    assert sorted(bank.recent) == [9, 10, 11] and sorted(bank.cond) == [0]


def test_small_holes_are_filled_as_sam2_does():
    logits = torch.full((1, 1, 20, 20), 5.0)
    logits[0, 0, 1:3, 1:5] = -1  # an 8-pixel hole: filled
    logits[0, 0, 1:4, 10:13] = -1  # a 9-pixel hole: kept
    diagonal = (torch.arange(8, 17), torch.arange(2, 11))
    logits[0, 0][diagonal] = -2  # 9 pixels touching by their corners: one 9-pixel hole (8-connected), kept
    filled = fill_holes(logits, 8)
    assert (filled[0, 0, 1:3, 1:5] == 0.1).all() and (filled[0, 0, 1:4, 10:13] == -1).all()
    assert (filled[0, 0][diagonal] == -2).all()
    assert (filled[0, 0] == 0.1).sum() == 8
    assert torch.equal(fill_holes(logits, 0), logits)
    try:
        from sam2 import _C  # noqa: F401
        from sam2.utils.misc import fill_holes_in_mask_scores
    except ImportError:
        return
    if not torch.cuda.is_available():
        return
    noisy = torch.randn(2, 1, 32, 32) + 1.5
    assert torch.equal(fill_holes(noisy.cuda(), 8).cpu(), fill_holes_in_mask_scores(noisy.cuda(), 8).cpu())


def test_a_backend_names_its_propagator():
    class Named:
        name, video_propagator = "toy", "no_such_memory"

    with pytest.raises(KeyError, match="toy: video_propagator='no_such_memory'; expected one of .*sam2_memory"):
        propagator_for(Named())


@pytest.mark.slow
def test_the_official_sam21_tiny_file_tracks_as_sam2_does(tmp_path):
    """The unchanged sam2.1_hiera_t config (1024 px, read from the weights): `Tracker(file)` alone."""
    torch.manual_seed(0)
    model = build("sam2.1_hiera_t")
    torch.save({"model": model.state_dict()}, tmp_path / "sam2.1_hiera_tiny.pt")
    tracker = Tracker(tmp_path / "sam2.1_hiera_tiny.pt", device="cpu")
    assert tracker.backend.name == "sam2.1_hiera_t" and isinstance(tracker.propagator, Sam2MemoryPropagator)
    official = build_sam2_video_predictor(SAM2_CONFIGS["sam2.1_hiera_t"][0], None, device="cpu")
    official.load_state_dict(model.state_dict())
    official.fill_hole_area = tracker.propagator.fill_hole_area = 0
    folder = clip(tmp_path, 3, size=(1024, 1024))
    state, session = tracker.init_state(folder), official.init_state(str(folder))
    _, _, ours = tracker.add_prompt(state, frame=0, obj_id=1, points=[[240, 320]], labels=[1])
    _, _, theirs = official.add_new_points_or_box(session, 0, 1, points=[[240, 320]], labels=[1])
    same(ours, theirs, "click")
    assert same_passes(tracker, state, official, session, start=0) == 3
