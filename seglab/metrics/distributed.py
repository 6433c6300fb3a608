"""Summing metric state across processes (no-op without torch.distributed)."""
from __future__ import annotations

import torch
import torch.distributed as dist


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Return ``tensor`` summed over all processes (same device and dtype as given).

    With the NCCL backend a CPU tensor is moved to the current CUDA device for the call.
    """
    if not is_distributed():
        return tensor
    work = tensor
    if dist.get_backend() == "nccl" and not tensor.is_cuda:
        work = tensor.cuda()
    work = work.clone()
    dist.all_reduce(work, op=dist.ReduceOp.SUM)
    return work.to(tensor.device)
