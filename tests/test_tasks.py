"""The task layer: which task a run belongs to, and the generic modes calling the task's implementation."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from seglab.cli import main
from seglab.config_keys import TASKS as KEY_TASKS
from seglab.models import DEFAULT_MODELS, TASK_MODELS
from seglab.modes import MODES, TASK_MODES
from seglab.tasks import TASKS, Task, TaskError, resolve_task
from test_instance_data_layouts import write_penn_fudan

SAMPLE = Path(__file__).resolve().parents[1] / "seglab" / "assets" / "pet_sample"


def test_every_task_is_declared_once_everywhere():
    assert tuple(TASKS) == KEY_TASKS  # the `task` key's choices
    assert set(TASKS) == set(TASK_MODELS) == set(DEFAULT_MODELS)
    for name, task in TASKS.items():
        assert task.name == name and task.models is TASK_MODELS[name]
        assert task.default_model in task.models or (task.default_model == "" and not task.models)
        assert task.default_metric in task.selection_metrics
        assert set(task.modes) <= set(TASK_MODES)
    assert set(MODES) == {*TASK_MODES, "models", "serve"}
    assert [t.name for t in TASKS.values() if "track" in t.modes] == ["video"]


def test_resolution_order(tmp_path):
    penn = tmp_path / "PennFudanPed"
    write_penn_fudan(penn, n=2)
    assert resolve_task(TASKS, task="instance").name == "instance"
    assert resolve_task(TASKS, checkpoint={"task": "instance"}, model="unet").name == "instance"
    assert resolve_task(TASKS, checkpoint={}).name == "semantic"  # checkpoints from before tasks
    assert resolve_task(TASKS, model="maskrcnn").name == "instance"
    assert resolve_task(TASKS, model="unet", data_root=penn).name == "semantic"  # the model says first
    assert resolve_task(TASKS, data_root=penn).name == "instance"  # only instance reads Penn-Fudan
    assert resolve_task(TASKS, data_root=SAMPLE).name == "semantic"
    assert resolve_task(TASKS).name == "semantic"
    with pytest.raises(TaskError, match="task='panoptik': expected one of semantic, instance"):
        resolve_task(TASKS, task="panoptik")


def test_a_model_two_tasks_share_must_be_disambiguated():
    a = Task("a", "", {"net": object}, {}, {"m": 1.0}, "net")
    b = Task("b", "", {"net": object}, {}, {"m": 1.0}, "net")
    with pytest.raises(TaskError, match="model='net' serves tasks a, b: say which with task="):
        resolve_task({"a": a, "b": b}, model="net", default="a")
    assert resolve_task({"a": a, "b": b}, task="b", model="net", default="a") is b


def test_a_mode_the_task_lacks_fails_by_name(capsys, monkeypatch):
    task = Task("x", "", {}, {}, {"m": 1.0}, "net", modes={"val": print})
    with pytest.raises(TaskError, match=r"task 'x' has no mode 'export' \(its modes: val\)"):
        task.mode("export")
    instance = TASKS["instance"]  # it has a benchmark mode now: the command line is checked on a copy without
    modes = {k: v for k, v in instance.modes.items() if k != "benchmark"}
    monkeypatch.setitem(TASKS, "instance", dataclasses.replace(instance, modes=modes))
    assert main(["benchmark", "task=instance", "model=maskrcnn"]) == 1
    assert "task 'instance' has no mode 'benchmark'" in capsys.readouterr().err


def test_verify_runs_the_instance_task_on_an_instance_layout(tmp_path, capsys):
    root = tmp_path / "PennFudanPed"
    write_penn_fudan(root, n=4)
    assert main(["verify", f"data={root}"]) == 0
    out = capsys.readouterr().out
    assert "(penn_fudan, instance segmentation)" in out and "OK" in out


def test_checkpoints_and_onnx_files_record_their_task(tmp_path):
    assert main(["train", "width=4", "depth=2", "imgsz=32", "epochs=1", "samples=0", "precision=fp32",
                 f"project={tmp_path}", "name=t", "verbose=false"]) == 0
    best = tmp_path / "t" / "best.pt"
    ckpt = torch.load(best, weights_only=True)
    assert ckpt["task"] == "semantic" and ckpt["arch"]["name"] == DEFAULT_MODELS["semantic"]
    pytest.importorskip("onnxruntime")
    from seglab.models.source import resolve_model
    from seglab.modes.dispatch import file_task

    assert main(["export", f"model={best}", "verbose=false"]) == 0
    assert file_task(resolve_model(best.with_suffix(".onnx"))) == "semantic"
    assert main(["val", f"model={tmp_path / 't'}", "split=test", "verbose=false"]) == 0  # a run folder as model=


def test_model_arguments_are_checked_against_the_default_model_of_the_task_the_data_names(tmp_path, capsys):
    root = tmp_path / "PennFudanPed"
    write_penn_fudan(root, n=4)
    assert main(["train", f"data={root}", "width=8", "epochs=1", f"project={tmp_path}"]) == 1
    assert "model=maskrcnn width=8: maskrcnn does not take 'width'" in capsys.readouterr().err
    assert main(["train", "output_stride=8", "epochs=1", f"project={tmp_path}"]) == 1  # the sample: semantic, unet
    assert "model=unet output_stride=8: unet does not take 'output_stride'" in capsys.readouterr().err
    assert not (tmp_path / "train").exists()  # nothing was trained


def test_a_key_its_task_does_not_read_is_refused_before_anything_runs(tmp_path, capsys):
    root = tmp_path / "PennFudanPed"
    write_penn_fudan(root, n=4)
    assert main(["train", f"data={root}", "resize=crop", "epochs=1", f"project={tmp_path}"]) == 1  # instance (the data)
    assert "resize='crop': the instance task does not use 'resize' (read by the semantic task" in capsys.readouterr().err
    assert main(["train", "min_score=0.3", "epochs=1", f"project={tmp_path}"]) == 1  # the sample: semantic
    assert "min_score=0.3: the semantic task does not use 'min_score' (read by the instance task" in capsys.readouterr().err
    assert main(["predict", "smooth=0.5", "task=panoptic", f"source={root}"]) == 1
    assert "(read by the semantic, instance tasks" in capsys.readouterr().err
    assert not (tmp_path / "train").exists()  # nothing was trained


@pytest.mark.parametrize("recipe", sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml")),
                         ids=lambda p: p.stem)
def test_every_recipe_sets_only_keys_its_task_reads(recipe):
    from seglab.config import check_task_keys, make_config
    from seglab.modes.dispatch import task_for

    cfg = make_config(cfg=str(recipe))
    check_task_keys(cfg, task_for(cfg, "train").name)
