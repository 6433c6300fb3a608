"""Checkpoints: atomic writes, weights-only loading, CheckpointError naming the file."""
import os
import pickle
import stat

import pytest
import torch

import seglab
from seglab.data.spec import ClassTable
from seglab.engine import checkpoint as ckpt_module
from seglab.engine.checkpoint import CheckpointError, atomic_save, load_checkpoint, make_checkpoint, model_from_checkpoint
from seglab.models import build_model

ARCH = {"name": "unet", "args": {"num_classes": 3, "width": 4, "depth": 2, "upsample": "transpose"}}
CLASSES = ClassTable(["pet", "background", "border"], [(1, 2, 3), (4, 5, 6), (7, 8, 9)], 255)
PREPROCESS = {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225], "resize": "stretch", "size": [64, 64]}


def checkpoint(seed=0, **extra):
    torch.manual_seed(seed)
    model = build_model(ARCH["name"], ARCH["args"])
    return model, make_checkpoint(model, ARCH, CLASSES, PREPROCESS, {"epochs": 2, "loss": {"ce": 1.0}}, epoch=2,
                                  metrics={"val_miou": 0.5}, **extra)


def test_round_trip_carries_everything(tmp_path):
    model, ckpt = checkpoint(optimizer=torch.optim.AdamW(build_model("unet", ARCH["args"]).parameters()).state_dict())
    atomic_save(ckpt, tmp_path / "best.pt")
    loaded = load_checkpoint(tmp_path / "best.pt")
    assert loaded["seglab_version"] == seglab.__version__
    assert loaded["arch"] == ARCH and loaded["preprocess"] == PREPROCESS and loaded["epoch"] == 2
    assert ClassTable.from_dict(loaded["classes"]) == CLASSES
    assert loaded["config"] == {"epochs": 2, "loss": {"ce": 1.0}} and "optimizer" in loaded
    rebuilt = model_from_checkpoint(loaded)
    assert not rebuilt.training
    x = torch.randn(1, 3, 20, 28)
    with torch.no_grad():
        assert torch.equal(rebuilt(x), model.eval()(x))


def test_atomic_save_replaces_and_leaves_no_temp_file(tmp_path):
    atomic_save({"value": 1}, tmp_path / "sub" / "last.pt")  # creates the folder
    atomic_save({"value": 2}, tmp_path / "sub" / "last.pt")
    assert os.listdir(tmp_path / "sub") == ["last.pt"]
    assert torch.load(tmp_path / "sub" / "last.pt", weights_only=True) == {"value": 2}


def test_atomic_save_file_permissions_follow_the_umask(tmp_path):
    atomic_save({"value": 1}, tmp_path / "a.pt")
    (tmp_path / "b.pt").write_bytes(b"x")  # what any ordinary file written here gets
    assert stat.S_IMODE((tmp_path / "a.pt").stat().st_mode) == stat.S_IMODE((tmp_path / "b.pt").stat().st_mode)


def test_failed_save_keeps_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    atomic_save({"epoch": 1}, path)
    before = path.read_bytes()
    real_save = torch.save

    def save_half_then_fail(obj, f, *args, **kwargs):
        real_save(obj, f, *args, **kwargs)
        f.truncate(10)  # a partial file on disk, then the failure
        raise OSError("disk full")

    monkeypatch.setattr(ckpt_module.torch, "save", save_half_then_fail)
    with pytest.raises(OSError, match="disk full"):
        atomic_save({"epoch": 2, "big": torch.zeros(1000)}, path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["last.pt"]
    monkeypatch.undo()
    assert load_checkpoint_raw(path) == {"epoch": 1}


def test_interrupt_during_save_leaves_no_target_and_no_temp(tmp_path, monkeypatch):
    def interrupted(obj, f, *args, **kwargs):
        f.write(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(ckpt_module.torch, "save", interrupted)
    with pytest.raises(KeyboardInterrupt):
        atomic_save({"epoch": 1}, tmp_path / "best.pt")
    assert os.listdir(tmp_path) == []


def load_checkpoint_raw(path):
    return torch.load(path, weights_only=True)


class Payload:
    """Unpickling this creates the file `marker`: code run by merely loading a file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_pickled_code_is_refused(tmp_path):
    path, marker = tmp_path / "evil.pt", tmp_path / "ran"
    _, ckpt = checkpoint()
    ckpt["extra"] = Payload(marker)
    torch.save(ckpt, path)
    torch.load(path, weights_only=False)["extra"].close()  # the payload is live: a plain load runs it
    assert marker.exists()
    marker.unlink()
    with pytest.raises(CheckpointError, match=r"evil\.pt: not a readable seglab checkpoint"):
        load_checkpoint(path)
    assert not marker.exists()


def test_plain_pickle_is_refused(tmp_path):
    path, marker = tmp_path / "plain.pt", tmp_path / "ran"
    path.write_bytes(pickle.dumps({"arch": {}, "obj": Payload(marker)}, protocol=2))
    with pytest.raises(CheckpointError, match=r"plain\.pt"):
        load_checkpoint(path)
    assert not marker.exists()


@pytest.mark.parametrize("content", [b"", b"hello, not a checkpoint", b"PK\x03\x04" + b"\0" * 30])
def test_non_checkpoint_files(tmp_path, content):
    path = tmp_path / "weights.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=r"weights\.pt: not a readable seglab checkpoint"):
        load_checkpoint(path)


@pytest.mark.parametrize("obj", [{"model": {}}, torch.zeros(3), [1, 2], 5, None])
def test_loadable_files_that_are_not_seglab_checkpoints(tmp_path, obj):
    path = tmp_path / "other.pt"
    torch.save(obj, path)
    with pytest.raises(CheckpointError, match=r"other\.pt: not a seglab checkpoint"):
        load_checkpoint(path)


def test_truncated_checkpoint(tmp_path):
    _, ckpt = checkpoint()
    atomic_save(ckpt, tmp_path / "cut.pt")
    data = (tmp_path / "cut.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"cut\.pt"):
        load_checkpoint(tmp_path / "cut.pt")


def test_missing_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match=r"nope\.pt: checkpoint not found"):
        load_checkpoint(tmp_path / "nope.pt")


def test_weights_that_do_not_fit_the_architecture(tmp_path):
    _, ckpt = checkpoint()
    ckpt["arch"] = {"name": "unet", "args": {**ARCH["args"], "width": 8}}
    with pytest.raises(CheckpointError, match="do not fit"):
        model_from_checkpoint(ckpt)


def test_reloading_a_pretrained_model_uses_the_checkpoint_not_the_weights_source(tmp_path):
    """A model trained from encoder_weights=PATH reloads after PATH is gone (and offline for imagenet)."""
    source = build_model("unet_encoder", {"num_classes": 3, "encoder": "resnet18"})
    weights_file = tmp_path / "encoder.pt"
    torch.save(source.encoder.state_dict(), weights_file)
    args = {"num_classes": 3, "encoder": "resnet18", "encoder_weights": str(weights_file)}
    model = build_model("unet_encoder", args)
    ckpt = make_checkpoint(model, {"name": "unet_encoder", "args": args}, ClassTable(["a", "b", "c"], [(0, 0, 0)] * 3),
                           {"mean": [0.5] * 3, "std": [0.5] * 3, "resize": "stretch", "size": [64, 64]}, {}, 1, {})
    atomic_save(ckpt, tmp_path / "best.pt")
    weights_file.unlink()
    rebuilt = model_from_checkpoint(load_checkpoint(tmp_path / "best.pt"))
    for key, value in model.state_dict().items():
        assert torch.equal(rebuilt.state_dict()[key], value), key
