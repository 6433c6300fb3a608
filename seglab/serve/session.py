"""One image being annotated: its prompt predictor (embedding cached at upload), the objects drawn so far
and the prompts of the object being drawn, with undo.

An object is drawn by a list of steps, one per prompt (a click or a box); each step keeps the mask,
score and low-resolution logits the model gave after it, so undo is a pop and never re-runs the
model. A click decodes every click of the object so far plus its latest box, with the previous
step's low-resolution logits as `mask_input` (SAM's refinement loop); the first prompt, a lone
click, asks for three candidates and keeps the best-scoring one (the ambiguous case).
"""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from seglab.serve.uploads import DecodedImage

POSITIVE, NEGATIVE = 1, 0  # point labels, as the prompt protocol has them


@dataclass
class Step:
    prompt: dict  # {"point": [x, y], "label": 1 | 0} or {"box": [x0, y0, x1, y1]}
    mask: np.ndarray  # bool [H, W]
    score: float
    low_res: np.ndarray  # float32 [1, 256, 256]


@dataclass
class DrawnObject:
    steps: list[Step]

    @property
    def mask(self) -> np.ndarray:
        return self.steps[-1].mask


@dataclass
class Session:
    name: str  # the uploaded file's stem: the saved files' names
    image: DecodedImage
    predictor: object | None = None  # seglab.prompt.Predictor with the image set; None without a prompt model
    prediction: dict | None = None  # a semantic / instance checkpoint's overlay and legend
    done: list[DrawnObject] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)  # the object being drawn
    id: str = field(default_factory=lambda: secrets.token_urlsafe(9))
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def shape(self) -> tuple[int, int]:
        return self.image.rgb.shape[:2]

    @property
    def current(self) -> np.ndarray | None:
        return self.steps[-1].mask if self.steps else None

    def masks(self) -> list[np.ndarray]:
        """Every object's mask in drawing order, the one being drawn last (when it has pixels)."""
        masks = [obj.mask for obj in self.done]
        return masks + [self.current] if self.current is not None and self.current.any() else masks

    # --- prompts --------------------------------------------------------------------------------
    def add(self, prompt: dict) -> Step:
        """Add a click or box to the object being drawn and run the model on all its prompts."""
        if self.predictor is None:
            raise ValueError("this model gives no masks for clicks (start the server with a promptable model=)")
        points = [s.prompt for s in self.steps if "point" in s.prompt] + ([prompt] if "point" in prompt else [])
        boxes = [s.prompt["box"] for s in self.steps if "box" in s.prompt] + ([prompt["box"]] if "box" in prompt else [])
        first_click = not self.steps and "point" in prompt
        masks, scores, low_res = self.predictor.predict(
            point_coords=np.array([p["point"] for p in points], np.float32) if points else None,
            point_labels=np.array([p["label"] for p in points], np.int64) if points else None,
            box=np.array(boxes[-1], np.float32) if boxes else None,
            mask_input=self.steps[-1].low_res if self.steps else None,
            multimask_output=first_click)
        best = int(np.argmax(scores))
        step = Step(prompt, np.asarray(masks[best], bool), float(scores[best]), low_res[best][None].astype(np.float32))
        self.steps.append(step)
        return step

    def undo(self) -> None:
        """Drop the last prompt; with none left, reopen the last finished object."""
        if self.steps:
            self.steps.pop()
        elif self.done:
            self.steps = self.done.pop().steps

    def clear(self) -> None:
        """Drop the object being drawn (finished objects stay)."""
        self.steps = []

    def next_object(self) -> None:
        """Finish the object being drawn (when its mask has pixels) and start a new one."""
        if self.current is not None and self.current.any():
            self.done.append(DrawnObject(self.steps))
        self.steps = []


class SessionStore:
    """The open sessions by id; past `capacity` the least recently used one is closed (embeddings are big)."""

    def __init__(self, capacity: int = 8):
        self.capacity = capacity
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, session: Session) -> Session:
        with self._lock:
            self._sessions[session.id] = session
            while len(self._sessions) > self.capacity:
                self._sessions.popitem(last=False)
        return session

    def get(self, session_id: str) -> Session:
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None:
                raise KeyError(session_id)
            self._sessions.move_to_end(session_id)
        return session

    def __len__(self) -> int:
        return len(self._sessions)
