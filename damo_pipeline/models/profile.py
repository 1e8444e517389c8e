"""Parameter and FLOP counts of a detector, with PyTorch's maintained FLOP counter."""
from __future__ import annotations

import copy
from dataclasses import asdict, dataclass
from typing import Dict, Optional

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from .layers import RepConv


@dataclass(frozen=True)
class ModelProfile:
    """Size and cost of one forward pass at batch 1.

    Attributes:
        params: number of parameters (buffers excluded) of the re-parameterised model: RepConv
            branches merged, BatchNorm kept, as the official README counts them.
        gflops: 2 x multiply-accumulates / 1e9 as counted by ``torch.utils.flop_counter``
            (convolutions and matmuls; BatchNorm, activations, pooling and upsampling count 0).
        img_size: square input side used.
        reparameterized: whether RepConv branches were merged before counting.
    """

    params: int
    gflops: float
    img_size: int
    reparameterized: bool

    @property
    def params_m(self) -> float:
        return self.params / 1e6

    def to_dict(self) -> Dict[str, float]:
        return {**asdict(self), "params_m": self.params_m}


def profile(model: nn.Module, img_size: Optional[int] = None, fuse: bool = True) -> ModelProfile:
    """Count params and GFLOPs of ``model`` on a 1x3xSxS input (the network only: no decode, no NMS).

    Args:
        model: a :class:`~damo_pipeline.models.Detector` (or any module taking an NCHW image).
        img_size: input side; default the model's native ``config.img_size``.
        fuse: merge RepConv branches first (the official ``switch_to_deploy``), which is what the
            official table reports. The given model is never modified (a copy is fused).
    """
    if img_size is None:
        config = getattr(model, "config", None)
        if config is None:
            raise ValueError("img_size is required for a model without a .config.img_size.")
        img_size = config.img_size
    if img_size <= 0 or img_size % 32:
        raise ValueError(f"img_size must be a positive multiple of 32, got {img_size}.")
    counted = model
    if fuse and hasattr(model, "fuse"):
        counted = copy.deepcopy(model)
        counted.fuse(fold_bn=False)
    reparameterized = not any(isinstance(m, RepConv) and not m.is_fused for m in counted.modules())
    params = sum(p.numel() for p in counted.parameters())
    device = next(counted.parameters()).device
    was_training = counted.training
    counted.eval()
    x = torch.zeros(1, 3, img_size, img_size, device=device)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        counted(x)
    counted.train(was_training)
    return ModelProfile(params=params, gflops=counter.get_total_flops() / 1e9, img_size=img_size,
                        reparameterized=reparameterized)
