"""The one interface every task evaluator follows (Detectron2's three methods), and a group of them.

An evaluator is fed one item at a time and keeps only what it needs to score the whole set::

    evaluator.reset()                          # forget everything seen so far
    for target, prediction in items:           # one image (instance, panoptic), one frame
        evaluator.process(target, prediction)  # (video) or one object's click session
    result = evaluator.evaluate()              # JSON-ready dict: plain floats, ints, lists, None

``target`` and ``prediction`` are mappings of named values for ONE item. Each evaluator reads
only the keys it documents and ignores the rest, so one dict can feed several evaluators
(a panoptic model's output can carry ``"masks"``/``"scores"``/``"labels"`` for the instance
evaluator and ``"segment_ids"``/``"segments"`` for the panoptic one). The keys used so far:

| evaluator | target keys | prediction keys |
| --- | --- | --- |
| ``InstanceEvaluator`` | masks, labels, iscrowd (optional) | masks, scores, labels |
| ``PanopticEvaluator`` | segment_ids, segments | segment_ids, segments |
| ``VideoObjectEvaluator`` | video, frame, object_ids | object_ids |
| ``ClickEvaluator`` | id (optional) | ious |

``evaluate()`` never mutates state, so it can be called mid-run; undefined values are None.
"""
from __future__ import annotations

from typing import Any, Mapping, Protocol, runtime_checkable


@runtime_checkable
class Evaluator(Protocol):
    def reset(self) -> None: ...

    def process(self, target: Mapping[str, Any], prediction: Mapping[str, Any]) -> None: ...

    def evaluate(self) -> dict: ...


def require(mapping: Mapping[str, Any], key: str, where: str) -> Any:
    """``mapping[key]``, or a KeyError naming the evaluator and the keys it was given."""
    if key not in mapping:
        raise KeyError(f"{where} needs key {key!r}; got keys {sorted(mapping)}")
    return mapping[key]


class EvaluatorGroup:
    """Several evaluators side by side: the same items go to each, results come back by name.

    ``EvaluatorGroup({"instance": InstanceEvaluator(3), "panoptic": PanopticEvaluator(...)})``;
    ``evaluate()`` returns ``{"instance": {...}, "panoptic": {...}}``.
    """

    def __init__(self, evaluators: Mapping[str, Evaluator]):
        for name, ev in evaluators.items():
            if not isinstance(ev, Evaluator):
                raise TypeError(f"evaluator {name!r} ({type(ev).__name__}) lacks reset/process/evaluate")
        self.evaluators = dict(evaluators)

    def reset(self) -> None:
        for ev in self.evaluators.values():
            ev.reset()

    def process(self, target: Mapping[str, Any], prediction: Mapping[str, Any]) -> None:
        for ev in self.evaluators.values():
            ev.process(target, prediction)

    def evaluate(self) -> dict:
        return {name: ev.evaluate() for name, ev in self.evaluators.items()}
