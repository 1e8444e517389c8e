"""Exponential moving average of the model weights, as in the official trainer (``spec/training.md`` §6).

After the optimizer step at 0-based iteration ``it`` every floating-point ``state_dict`` entry
(parameters, BatchNorm running statistics, the head's integral buffer) is updated with
``ema = m * ema + (1 - m) * model`` where ``m = decay * (1 - exp(-it / ramp))`` (``decay`` 0.9998,
``ramp`` 2000 iterations; ``m = 0`` at ``it = 0``, so the EMA starts as a copy). Integer buffers
(``num_batches_tracked``) keep their initial values, as upstream.
"""
from __future__ import annotations

import copy
import math
from typing import Dict, List

import torch
from torch import nn

__all__ = ["ModelEMA"]


class ModelEMA:
    """A frozen copy of a model that tracks its weights.

    Args:
        model: the model being trained (unwrapped, not the DDP wrapper).
        decay: asymptotic momentum (0.9998).
        ramp_iters: iterations of the ``1 - exp(-it / ramp)`` ramp (2000).

    Attributes:
        module: the averaged model, in eval mode with ``requires_grad=False``.
    """

    def __init__(self, model: nn.Module, decay: float = 0.9998, ramp_iters: float = 2000.0) -> None:
        self.module = copy.deepcopy(model).eval()
        for param in self.module.parameters():
            param.requires_grad_(False)
        self.decay = float(decay)
        self.ramp_iters = float(ramp_iters)
        self._keys: List[str] = [k for k, v in self.module.state_dict().items() if v.dtype.is_floating_point]

    def momentum(self, iteration: int) -> float:
        """``decay * (1 - exp(-iteration / ramp_iters))``."""
        return self.decay * (1.0 - math.exp(-iteration / self.ramp_iters))

    @torch.no_grad()
    def update(self, model: nn.Module, iteration: int) -> float:
        """Blend ``model``'s floating-point state into the EMA after the step at ``iteration``.

        Returns:
            the momentum used.
        """
        m = self.momentum(iteration)
        ema_state = self.module.state_dict()
        model_state = model.state_dict()
        ema_tensors = [ema_state[k] for k in self._keys]
        model_tensors = [model_state[k].detach().to(dtype=ema_state[k].dtype) for k in self._keys]
        torch._foreach_mul_(ema_tensors, m)
        torch._foreach_add_(ema_tensors, model_tensors, alpha=1.0 - m)
        return m

    def state_dict(self) -> Dict[str, torch.Tensor]:
        """The averaged model's ``state_dict``."""
        return self.module.state_dict()

    def load_state_dict(self, state_dict: Dict[str, torch.Tensor]) -> None:
        """Restore averaged weights (strict)."""
        self.module.load_state_dict(state_dict, strict=True)
