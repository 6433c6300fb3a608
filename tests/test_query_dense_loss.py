"""The query model's dense mask loss (mask_loss=dense): area-fraction targets per cell of the mask grid, and
a loss that grows with every pixel a mask spills over (what the sampled points hardly see)."""
from __future__ import annotations

import pytest
import torch

from seglab.models import model_arguments
from seglab.models.query import MaskFormerPanoptic
from seglab.models.query.loss import dense_targets, pooled, set_losses

OPTIONS = {"weights": {"class": 2.0, "mask": 5.0, "dice": 5.0}, "no_object_weight": 0.1, "points": 64}


def test_pooled_is_the_set_fraction_of_each_cell_with_the_padding_empty():
    masks = torch.zeros(1, 6, 6, dtype=torch.bool)
    masks[0, :2, :4] = True  # cell (0, 0): 8 of 16 pixels
    masks[0, 5, 5] = True  # cell (1, 1): 1 pixel of its 4 inside the image, 16 with the padding
    out = pooled(masks, (8, 8), 4)
    assert out.shape == (1, 2, 2)
    assert out[0].tolist() == [[0.5, 0.0], [0.0, 1 / 16]]


def test_dense_targets_leave_void_out_of_the_cell():
    masks = torch.zeros(2, 4, 4, dtype=torch.bool)
    masks[0, :, :2] = True
    masks[1, :, 2:] = True
    valid = torch.ones(4, 4, dtype=torch.bool)
    valid[:2, :2] = False  # half of the first segment's pixels in cell (0, 0) of stride 2 ... all of them
    targets = dense_targets({"masks": masks & valid, "valid": valid, "labels": torch.tensor([0, 1])}, 0, (4, 4), 2)
    assert targets.values.shape == (2, 4) and targets.xy.shape == (2, 0, 2)
    assert targets.weights[0].tolist() == [0.0, 1.0, 1.0, 1.0]  # cell (0, 0) entirely void
    assert targets.values[0].tolist() == [0.0, 0.0, 1.0, 0.0]
    assert targets.values[1].tolist() == [0.0, 1.0, 0.0, 1.0]
    picked = targets.take(torch.tensor([1]))
    assert picked.values.shape == (1, 4) and picked.weights.shape == (1, 4)


def one_query_losses(spill: int, mask_loss: str) -> dict:
    """One 8x8 object at the corner of a 64x64 image, one query predicting it plus `spill` extra columns."""
    masks = torch.zeros(1, 64, 64, dtype=torch.bool)
    masks[0, :8, :8] = True
    segment = {"labels": torch.tensor([0]), "masks": masks, "valid": torch.ones(64, 64, dtype=torch.bool)}
    logits = torch.full((1, 1, 16, 16), -20.0)
    logits[0, 0, :2, :2 + spill] = 20.0  # stride 4: the object's cells and `spill` cells right of it
    class_logits = torch.tensor([[[10.0, -10.0]]])
    torch.manual_seed(0)
    return set_losses([(class_logits, logits)], [segment], (64, 64), {**OPTIONS, "mask_loss": mask_loss})


def test_dense_dice_counts_every_spilled_cell():
    exact = one_query_losses(0, "dense")
    assert float(exact["dice"]) == pytest.approx(5.0 * (1 - 9 / 9), abs=1e-3)
    spilled = one_query_losses(6, "dense")  # 4 object cells, 2 x 8 predicted: Dice (2*4 + 1) / (16 + 4 + 1)
    assert float(spilled["dice"]) == pytest.approx(5.0 * (1 - 9 / 21), abs=1e-3)
    assert float(spilled["mask"]) == pytest.approx(5.0 * 20 * 12 / 256, rel=1e-3)  # 12 wrong cells of 256, 20 each
    assert torch.equal(exact["class"], spilled["class"])


def test_the_model_reads_mask_loss_and_refuses_an_unknown_one():
    tiny = {"encoder": "mobilenet_v2", "num_queries": 4, "decoder_channels": 64}
    assert MaskFormerPanoptic(2, [False, True], mask_loss="dense", **tiny).loss_options["mask_loss"] == "dense"
    assert MaskFormerPanoptic(2, [False, True], **tiny).loss_options["mask_loss"] == "points"
    with pytest.raises(ValueError, match="mask_loss must be one of points, dense"):
        MaskFormerPanoptic(2, [False, True], mask_loss="everywhere", **tiny)
    assert model_arguments("maskformer", 2, {"mask_loss": "dense", "num_queries": 4})["mask_loss"] == "dense"
