"""`sam`: SAM's prompt encoder + mask decoder (the official segment-anything modules), the part of SAM that
`seglab train task=prompt model=sam sam_checkpoint=...` fine-tunes (seglab/tasks/prompt/sam_finetune.py).

The image encoder is not in this module: it stays frozen and its embeddings are computed once per image, so
training runs only this part. Every SAM v1 variant (ViT-B / L / H, MobileSAM's vit_t) has the same prompt
encoder and mask decoder (segment_anything/build_sam.py): 256-wide prompt embeddings on a 64 x 64 grid of
a 1024 x 1024 input, a two-way transformer of depth 2, 3 multimask outputs plus the single-mask one. A
checkpoint keeps the frozen encoder's weights beside this module's; seglab/prompt/sam_finetuned.py joins
them back into the official `Sam` for `seglab.prompt.Predictor`.

`sam_type` and `sam_checkpoint` say which official weights the decoder came from (recorded in the
checkpoint's arch; building the module reads no file).
"""

from __future__ import annotations

import importlib

import torch
from torch import nn

PROMPT_DIM = 256
EMBEDDING_GRID = 64  # image embedding side (1024 / patch 16)
INPUT_SIZE = 1024


def segment_anything_modeling():
    try:
        return importlib.import_module("segment_anything.modeling")
    except ImportError as e:
        raise RuntimeError(f"model=sam needs the 'segment-anything' package ({e}): pip install 'seglab[sam]'") from None


class SamDecoder(nn.Module):
    """Official SAM prompt encoder + mask decoder (fine-tuned on a frozen image encoder's cached embeddings)."""

    def __init__(self, num_classes: int = 1, sam_type: str = "", sam_checkpoint: str = ""):
        super().__init__()
        modeling = segment_anything_modeling()
        self.sam_type, self.sam_checkpoint = sam_type, sam_checkpoint
        self.prompt_encoder = modeling.PromptEncoder(
            embed_dim=PROMPT_DIM, image_embedding_size=(EMBEDDING_GRID, EMBEDDING_GRID),
            input_image_size=(INPUT_SIZE, INPUT_SIZE), mask_in_chans=16)
        self.mask_decoder = modeling.MaskDecoder(
            num_multimask_outputs=3,
            transformer=modeling.TwoWayTransformer(depth=2, embedding_dim=PROMPT_DIM, mlp_dim=2048, num_heads=8),
            transformer_dim=PROMPT_DIM, iou_head_depth=3, iou_head_hidden_dim=256)

    def decode(self, image_embeddings: torch.Tensor, points: torch.Tensor | None, labels: torch.Tensor | None,
               boxes: torch.Tensor | None, mask_input: torch.Tensor | None, multimask: bool):
        """One image's embedding [1, 256, 64, 64] and B prompts in the 1024 input frame (points [B, N, 2],
        labels [B, N] 1 / 0 / -1 padding, boxes [B, 4], mask_input [B, 1, 256, 256] logits)
        -> (low-res logits [B, C, 256, 256], predicted IoU [B, C]), C = 3 when multimask else 1."""
        sparse, dense = self.prompt_encoder(points=None if points is None else (points, labels.int()), boxes=boxes,
                                            masks=mask_input)
        return self.mask_decoder(image_embeddings=image_embeddings, image_pe=self.prompt_encoder.get_dense_pe(),
                                 sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense,
                                 multimask_output=multimask)

    forward = decode
