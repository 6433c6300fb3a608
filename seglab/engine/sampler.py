"""Batches that are a pure function of (seed, epoch, position): exact resume and DDP sharding.

Each epoch is a seeded permutation of the dataset cut into global batches. A process of a DDP group
takes its contiguous share of every global batch, so the union over ranks is exactly the batch a
single process would see. Every sample key carries its own augmentation seed, so augmentation does
not depend on worker processes, on where a resumed run starts, or on the number of ranks.
"""

from __future__ import annotations

import torch
from torch.utils.data import Sampler


def augmentation_seed(seed: int, epoch: int, position: int) -> int:
    return ((seed * 1_000_003 + epoch) * 10_000_019 + position) % (2**63 - 1)


class EpochBatchSampler(Sampler):
    """Yields lists of (index, augmentation seed) for this rank; `set_epoch(epoch, start_batch)` before iterating."""

    def __init__(self, size: int, global_batch: int, seed: int = 0, rank: int = 0, world_size: int = 1,
                 drop_last: bool = True):
        if global_batch % world_size:
            raise ValueError(f"batch={global_batch} must be divisible by the number of processes ({world_size})")
        self.size, self.global_batch, self.seed = size, global_batch, seed
        self.rank, self.world_size = rank, world_size
        self.drop_last = drop_last and size >= global_batch
        self.epoch, self.start_batch = 0, 0

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        self.epoch, self.start_batch = epoch, start_batch

    def __len__(self) -> int:
        """Batches per epoch (from the start of the epoch)."""
        full, rest = divmod(self.size, self.global_batch)
        return full if self.drop_last or rest == 0 else full + 1

    def __iter__(self):
        order = torch.randperm(self.size, generator=torch.Generator().manual_seed(self.seed * 7919 + self.epoch)).tolist()
        for b in range(self.start_batch, len(self)):
            batch = order[b * self.global_batch:(b + 1) * self.global_batch]
            share = -(-len(batch) // self.world_size)
            mine = range(self.rank * share, min(len(batch), (self.rank + 1) * share))
            yield [(batch[p], augmentation_seed(self.seed, self.epoch, b * self.global_batch + p)) for p in mine]
