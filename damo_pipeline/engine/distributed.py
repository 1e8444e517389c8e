"""Process-group set-up for ``torchrun`` launches; single-process runs never touch torch.distributed.

``torchrun --nproc_per_node=N recipes/train.py ...`` sets ``WORLD_SIZE``/``RANK``/``LOCAL_RANK``; when
``WORLD_SIZE > 1`` we initialise the default group (NCCL on CUDA, gloo on CPU) and pin each process to
``cuda:LOCAL_RANK``.
"""
from __future__ import annotations

import inspect
import logging
import os
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Union

import torch
import torch.distributed as dist

logger = logging.getLogger(__name__)

__all__ = ["DistContext", "all_gather_objects", "broadcast_object", "init_distributed", "no_buffer_sync_kwargs",
           "resolve_device"]


@dataclass(frozen=True)
class DistContext:
    """Where this process stands: ``rank`` of ``world_size`` processes, on ``device``."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()


def resolve_device(device: Optional[Union[str, torch.device]] = None, local_rank: int = 0) -> torch.device:
    """``None``/``"auto"`` -> ``cuda:<local_rank>`` when CUDA is available, else CPU.

    Raises:
        ValueError: CUDA was asked for but is not available, or the string is not a device.
    """
    if device is None or str(device) == "auto":
        return torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else torch.device("cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as e:
        raise ValueError(f"Unknown device {device!r}; use 'cpu', 'cuda', 'cuda:0' or 'auto'.") from e
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"Device {device!r} was requested but CUDA is not available; use --device cpu.")
        if resolved.index is None:
            resolved = torch.device(f"cuda:{local_rank}")
    return resolved


def init_distributed(device: Optional[Union[str, torch.device]] = None) -> DistContext:
    """Join the process group when launched by ``torchrun`` with ``WORLD_SIZE > 1``; else a 1-process context.

    Reuses an already initialised default group.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1 and not (dist.is_available() and dist.is_initialized()):
        return DistContext(0, 1, 0, resolve_device(device))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    resolved = resolve_device(device, local_rank)
    if not dist.is_initialized():
        backend = "nccl" if resolved.type == "cuda" else "gloo"
        if resolved.type == "cuda":
            torch.cuda.set_device(resolved)
        dist.init_process_group(backend=backend)
        logger.info("Joined process group: backend %s, rank %d of %d", backend, dist.get_rank(),
                    dist.get_world_size())
    return DistContext(dist.get_rank(), dist.get_world_size(), local_rank, resolved)


def all_gather_objects(obj: Any, ctx: DistContext) -> List[Any]:
    """Every rank's ``obj`` (in rank order); ``[obj]`` in single-process runs."""
    if not ctx.distributed:
        return [obj]
    gathered: List[Any] = [None] * ctx.world_size
    dist.all_gather_object(gathered, obj)
    return gathered


def broadcast_object(obj: Any, ctx: DistContext, src: int = 0) -> Any:
    """Rank ``src``'s ``obj`` on every rank."""
    if not ctx.distributed:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def no_buffer_sync_kwargs() -> Dict[str, bool]:
    """DistributedDataParallel keyword that stops the per-forward buffer broadcast (upstream's
    ``broadcast_buffers=False``): ``forward_sync_buffers=False`` where torch has it (``broadcast_buffers`` is
    deprecated there; buffers are still synchronised once at construction, which is what we want).
    """
    params = inspect.signature(torch.nn.parallel.DistributedDataParallel.__init__).parameters
    if "forward_sync_buffers" in params:
        return {"forward_sync_buffers": False}
    return {"broadcast_buffers": False}
