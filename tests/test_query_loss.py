"""The query model's targets -> segments, and its set loss falling while it overfits one synthetic batch per task."""
from __future__ import annotations

import pytest
import torch

from seglab.models.query import MaskFormerInstance, MaskFormerPanoptic, MaskFormerSemantic
from seglab.models.query.targets import instance_segments, panoptic_segments, semantic_segments

SIZE = 32
TINY = {"encoder": "mobilenet_v2", "num_queries": 8, "decoder_channels": 64, "mask_points": 128}
STEPS = 60


@pytest.fixture(autouse=True)
def one_thread():
    """Small ops: one thread is faster than two competing for a shared CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def scene() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Two images (the second mirrored): semantic map (0 background, 1 and 2 objects) and instance ids."""
    semantic = torch.zeros(2, SIZE, SIZE, dtype=torch.long)
    instances = torch.zeros(2, SIZE, SIZE, dtype=torch.long)
    semantic[:, 4:20, 4:14], instances[:, 4:20, 4:14] = 1, 1
    semantic[:, 22:30, 18:30], instances[:, 22:30, 18:30] = 2, 2
    semantic[:, 3:12, 20:28], instances[:, 3:12, 20:28] = 1, 3
    semantic[1], instances[1] = semantic[1].flip(-1), instances[1].flip(-1)
    return semantic, instances, image_of(semantic)


def image_of(semantic: torch.Tensor) -> torch.Tensor:
    colours = torch.tensor([[-1.0, 0.0, 0.5], [1.0, -1.0, 0.0], [0.0, 1.0, -1.0]])
    g = torch.Generator().manual_seed(0)
    return colours[semantic].permute(0, 3, 1, 2) + 0.1 * torch.randn(2, 3, SIZE, SIZE, generator=g)


def test_semantic_segments_one_per_present_class_with_void():
    labels = torch.tensor([[0, 0, 2], [255, 2, 2]])
    seg = semantic_segments(labels, 3)
    assert seg["labels"].tolist() == [0, 2]
    assert seg["masks"].tolist() == [[[True, True, False], [False, False, False]],
                                     [[False, False, True], [False, True, True]]]
    assert seg["valid"].tolist() == [[True, True, True], [False, True, True]]


def test_panoptic_segments_stuff_per_class_things_per_instance():
    semantic = torch.tensor([[0, 0, 1, 1], [2, 2, 1, 255], [0, 3, 3, 1]])
    instances = torch.tensor([[0, 0, 5, 5], [0, 0, 5, 0], [0, 7, 7, 0]])
    # class 0, 2 stuff; 1, 3 things; (2, 3) is thing class 1 outside every instance: void; (1, 3) void
    seg = panoptic_segments({"semantic": semantic, "instances": instances}, [False, True, False, True])
    assert seg["labels"].tolist() == [0, 2, 1, 3]
    assert [int(m.sum()) for m in seg["masks"]] == [3, 2, 3, 2]
    assert seg["valid"].sum() == 10 and not seg["valid"][2, 3] and not seg["valid"][1, 3]
    mixed = panoptic_segments({"semantic": torch.tensor([[1, 1, 3]]), "instances": torch.tensor([[4, 4, 4]])},
                              [False, True, False, True])
    assert mixed["labels"].tolist() == [1]  # the most frequent class under the instance
    crowd = panoptic_segments({"semantic": torch.tensor([[255, 0]]), "instances": torch.tensor([[2, 0]])},
                              [False, True])
    assert crowd["labels"].tolist() == [0]  # an instance only on void is no segment


def test_instance_segments_are_0_based_and_checked():
    masks = torch.zeros(2, 4, 4, dtype=torch.uint8)
    seg = instance_segments({"labels": torch.tensor([1, 2]), "masks": masks}, 2)
    assert seg["labels"].tolist() == [0, 1] and seg["valid"].all()
    with pytest.raises(ValueError, match="labels must be 1..2"):
        instance_segments({"labels": torch.tensor([0, 3]), "masks": masks}, 2)


def overfit(model, x, targets, steps: int = STEPS) -> tuple[float, float]:
    torch.manual_seed(0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model.train()
    losses = []
    for _ in range(steps):
        loss = sum(model(x, targets).values())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    return sum(losses[:3]) / 3, sum(losses[-3:]) / 3


def test_semantic_set_loss_overfits_and_predicts_the_classes():
    semantic, _, x = scene()
    torch.manual_seed(0)
    model = MaskFormerSemantic(3, **{k: v for k, v in TINY.items() if k != "mask_points"})  # semantic: keys only
    first, last = overfit(model, x, semantic)
    assert last < 0.35 * first, (first, last)
    with torch.no_grad():
        accuracy = (model.eval()(x).argmax(1) == semantic).float().mean()
    assert accuracy > 0.85


def test_instance_set_loss_overfits_and_finds_the_objects():
    semantic, instances, x = scene()
    targets = []
    for sem, ids in zip(semantic, instances):
        masks = torch.stack([ids == k for k in (1, 2, 3)]).to(torch.uint8)
        targets.append({"boxes": torch.zeros(3, 4), "labels": torch.tensor([1, 2, 1]), "masks": masks})
    torch.manual_seed(0)
    model = MaskFormerInstance(2, **TINY)
    first, last = overfit(model, x, targets)
    assert last < 0.35 * first, (first, last)
    with torch.no_grad():
        found = model.eval()(x)[0]
    best = found["masks"][:3, 0] >= 0.5
    for k, label in zip((1, 2, 3), (1, 2, 1)):  # each object is covered by a top-3 detection of its class
        truth = instances[0] == k
        iou = (best & truth).flatten(1).sum(1) / (best | truth).flatten(1).sum(1)
        assert iou.max() > 0.5 and int(found["labels"][iou.argmax()]) == label


# dense: the loss sees the 8x8 mask grid's soft object borders and needs more steps to separate the objects
@pytest.mark.parametrize("mask_loss, steps", [("points", STEPS), ("dense", 2 * STEPS)])
def test_panoptic_set_loss_overfits_and_segments_the_scene(mask_loss, steps):
    semantic, instances, x = scene()
    targets = [{"semantic": s, "instances": i} for s, i in zip(semantic, instances)]
    torch.manual_seed(0)
    model = MaskFormerPanoptic(3, [False, True, True], object_threshold=0.5, mask_loss=mask_loss, **TINY)
    first, last = overfit(model, x, targets, steps)
    assert last < 0.35 * first, (first, last)
    with torch.no_grad():
        out = model.eval()(x)[0]
    categories = sorted(s["category_id"] for s in out["segments"])
    assert categories == [0, 1, 1, 2], out["segments"]
