"""Promptable-segmentation model registry: name -> class (not in seglab.models.MODELS, the semantic one).

A prompt model splits its forward SAM's way: `embed(x)` (heavy, once per image: normalised
[N, 3, S, S] -> cached features) and `decode(features, points, labels, boxes, prev_logits)` (light,
per click: mask logits at 1/4 of the input and a predicted IoU per output). seglab/prompt/click_backend.py
turns one into a backend of seglab.prompt's protocol (original-image coordinates and sizes).
"""

from __future__ import annotations

from torch import nn

from seglab.models.prompt.click_seg import ClickSeg
from seglab.models.prompt.sam_decoder import SamDecoder

PROMPT_MODELS: dict[str, type[nn.Module]] = {
    "click_seg": ClickSeg,
    "sam": SamDecoder,  # official SAM's prompt encoder + mask decoder, fine-tuned (seglab/tasks/prompt/sam_finetune.py)
}
