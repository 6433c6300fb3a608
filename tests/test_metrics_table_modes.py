"""format_class_table and the logits -> labels helper shared with the losses."""
import pytest
import torch

from seglab.losses import build_loss
from seglab.metrics import (BINARY, MODES, MULTICLASS, ConfusionMatrix, SegmentationMetrics, format_class_table,
                            infer_mode, logits_to_labels)


def test_logits_to_labels_modes():
    logits = torch.tensor([[[[0.1, 2.0]], [[1.0, -1.0]]]])          # [1, 2, 1, 2]
    assert logits_to_labels(logits, MULTICLASS).tolist() == [[[1, 0]]]
    ties = torch.randint(0, 3, (2, 4, 5, 6)).float()    # many ties: first maximum wins, as argmax
    assert torch.equal(logits_to_labels(ties), ties.argmax(1))
    z = torch.tensor([[[-0.5, 0.0, 0.5]]])
    assert logits_to_labels(z, BINARY).tolist() == [[[0, 0, 1]]]             # sigmoid(0) = 0.5 is not > 0.5
    assert logits_to_labels(z.unsqueeze(1), BINARY, threshold=0.3).tolist() == [[[1, 1, 1]]]
    assert MODES == ("binary", "multiclass") and infer_mode(1) == BINARY and infer_mode(5) == MULTICLASS
    with pytest.raises(KeyError, match="valid modes"):
        logits_to_labels(z, "multilabel")
    with pytest.raises(ValueError):
        logits_to_labels(torch.zeros(1, 3, 2, 2), BINARY)


def test_binary_mode_is_shared_by_loss_and_metrics():
    loss_fn = build_loss("dice", num_classes=1)
    assert loss_fn.mode == BINARY == SegmentationMetrics(2, mode="binary").mode


def test_format_class_table():
    cm = ConfusionMatrix(3)
    cm.update(torch.tensor([[0, 0, 1, 1]]), torch.tensor([[0, 0, 1, 0]]))
    flat = cm.compute()
    text = format_class_table(flat, ["road", "car", "sky"])
    lines = text.splitlines()
    assert lines[0].split() == ["class", "IoU", "Dice", "Acc", "BF", "Share"]
    assert lines[2].split() == ["road", "66.67", "80.00", "66.67", "-", "75.00"]
    assert lines[4].split() == ["sky", "-", "-", "-", "-", "0.00"]
    assert lines[3].split()[:2] == ["car", "50.00"] and lines[-1].split()[:2] == ["mean", "58.33"]
    suite = SegmentationMetrics(3, boundary=True)
    suite.update(torch.tensor([[0, 0, 1, 1]]), torch.tensor([[0, 0, 1, 0]]))
    text = format_class_table(suite.compute(), ["road", "car", "sky"])
    assert text.splitlines()[2].split()[4] != "-"       # BF column filled from the "boundary" section
    with pytest.raises(ValueError):
        format_class_table(flat, ["road"])
