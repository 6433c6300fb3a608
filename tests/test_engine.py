"""Training engine: optimizer groups, schedules, accumulation, NaN stop, early stopping, time budget."""

import math

import pytest
import torch

from seglab.config import make_config
from seglab.engine.optim import build_optimizer, lr_factor
from seglab.engine.sampler import EpochBatchSampler
from seglab.engine.trainer import TrainingError
from seglab.models import build_model
from seglab.tasks.semantic.train import train

TINY = dict(width=4, depth=2, imgsz=32, samples=0, verbose=False, norm="group", loss="ce", optimizer="sgd", lr=0.05)


def test_no_weight_decay_on_norms_and_biases():
    model = build_model("unet", {"num_classes": 3, "width": 4, "depth": 1})
    opt = build_optimizer(model, make_config(weight_decay=0.01))
    decayed = {id(p) for g in opt.param_groups if g["weight_decay"] > 0 for p in g["params"]}
    for name, p in model.named_parameters():
        assert (id(p) in decayed) == (p.ndim > 1), name


@pytest.mark.parametrize("schedule", ["cosine", "poly", "onecycle"])
def test_schedules_decay_to_near_zero_and_start_high(schedule):
    values = [lr_factor(schedule, t / 100) for t in range(101)]
    assert values[-1] < 1e-3
    assert max(values) == pytest.approx(1.0, abs=1e-3)
    if schedule != "onecycle":
        assert all(a >= b for a, b in zip(values, values[1:]))  # monotone decay
    else:
        assert values[0] < 0.05 and values.index(max(values)) == 30  # ramps up for 30%, then anneals


def test_sampler_shards_cover_each_global_batch_exactly_once():
    single = EpochBatchSampler(43, 8, seed=3)
    ranks = [EpochBatchSampler(43, 8, seed=3, rank=r, world_size=2) for r in range(2)]
    for s in [single, *ranks]:
        s.set_epoch(2)
    for whole, a, b in zip(single, *ranks):
        assert whole == a + b
    assert len(single) == 5
    resumed = EpochBatchSampler(43, 8, seed=3)
    resumed.set_epoch(2, start_batch=3)
    assert list(resumed) == list(single)[3:]


def test_gradient_accumulation_equals_the_larger_batch(tmp_path):
    # fp32: in bf16 (chosen automatically on AVX512-BF16 / AMX CPUs) the two sums round differently
    big = train(make_config(**TINY, precision="fp32", epochs=1, batch=8, project=tmp_path, name="big"))
    acc = train(make_config(**TINY, precision="fp32", epochs=1, batch=4, accumulate=2, project=tmp_path, name="acc"))
    a = torch.load(big / "last.pt", weights_only=True)
    b = torch.load(acc / "last.pt", weights_only=True)
    assert a["state"]["step"] == b["state"]["step"] == 5
    for key in a["model"]:
        torch.testing.assert_close(b["model"][key], a["model"][key], rtol=1e-4, atol=1e-5)


def test_nan_loss_stops_with_a_clear_message_and_keeps_the_last_good_checkpoint(tmp_path):
    run = train(make_config(**TINY, epochs=1, batch=8, project=tmp_path, name="nan", exist_ok=True))
    good = torch.load(run / "last.pt", weights_only=True)["model"]
    with pytest.raises(TrainingError, match=r"loss became (nan|inf).*last.pt"):
        train(make_config(**{**TINY, "lr": 1e30}, epochs=2, batch=8, project=tmp_path, name="nan", exist_ok=True,
                          precision="fp32"))
    kept = torch.load(run / "last.pt", weights_only=True)["model"]
    assert all(torch.isfinite(v).all() for v in kept.values() if v.is_floating_point())
    assert all(torch.equal(kept[k], good[k]) for k in good)


def test_early_stopping_stops_after_patience_epochs_without_improvement(tmp_path):
    run = train(make_config(**{**TINY, "lr": 1e-9}, epochs=20, batch=8, patience=2, metric="loss",
                            schedule="constant", warmup_epochs=0, project=tmp_path, name="es"))
    state = torch.load(run / "last.pt", weights_only=True)["state"]
    epochs = len(state["history"])
    assert epochs < 20
    assert state["bad_epochs"] == 2 and epochs - state["best_epoch"] == 2


def test_time_budget_stops_cleanly_with_final_validation(tmp_path):
    run = train(make_config(**TINY, epochs=1000, time="3s", batch=8, project=tmp_path, name="budget"))
    state = torch.load(run / "last.pt", weights_only=True)["state"]
    assert 1 <= len(state["history"]) < 1000
    assert state["elapsed"] < 60
    assert (run / "metrics.json").exists() and (run / "best.pt").exists()
    assert not math.isnan(state["history"][-1]["val_loss"])
