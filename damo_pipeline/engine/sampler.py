"""The training sampler: a seeded permutation per epoch, split over processes, that can start mid-epoch."""
from __future__ import annotations

import math
from typing import Iterator

import torch
from torch.utils.data import Sampler

__all__ = ["EpochSampler"]


class EpochSampler(Sampler[int]):
    """Shuffled indices for one process, reproducible from ``(seed, epoch)``.

    As upstream's distributed sampler: the permutation is padded (by repeating its head) to a multiple
    of ``world_size`` and each rank takes a contiguous block. :meth:`set_epoch` can skip the first
    ``skip`` indices of the rank's block, which is how a run resumed mid-epoch continues with exactly
    the samples it had not seen.

    Args:
        size: dataset length.
        rank / world_size: this process and the process count.
        seed: base seed; epoch ``e`` uses ``seed + e``.
        shuffle: permute (training) or keep order.
    """

    def __init__(self, size: int, rank: int = 0, world_size: int = 1, seed: int = 0, shuffle: bool = True) -> None:
        if size < 1:
            raise ValueError("The training dataset is empty: it has no images to sample.")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is outside world_size {world_size}.")
        self.size = size
        self.rank = rank
        self.world_size = world_size
        self.seed = seed
        self.shuffle = shuffle
        self.epoch = 0
        self.skip = 0

    @property
    def per_rank(self) -> int:
        """Indices each rank gets per epoch (after padding)."""
        return math.ceil(self.size / self.world_size)

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        """Use epoch ``epoch``'s permutation and leave out its first ``skip`` indices on this rank."""
        if not 0 <= skip <= self.per_rank:
            raise ValueError(f"skip must lie in [0, {self.per_rank}], got {skip}.")
        self.epoch = epoch
        self.skip = skip

    def indices(self) -> torch.Tensor:
        """This rank's full block for the current epoch (before skipping)."""
        if self.shuffle:
            generator = torch.Generator()
            generator.manual_seed(self.seed + self.epoch)
            order = torch.randperm(self.size, generator=generator)
        else:
            order = torch.arange(self.size)
        total = self.per_rank * self.world_size
        if total > self.size:
            order = torch.cat([order, order.repeat(math.ceil(total / self.size))[: total - self.size]])
        start = self.rank * self.per_rank
        return order[start: start + self.per_rank]

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices()[self.skip:].tolist())

    def __len__(self) -> int:
        return self.per_rank - self.skip
