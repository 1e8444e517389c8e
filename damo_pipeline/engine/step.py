"""One training micro-batch: mixed-precision forward, detection losses, loss plugins.

:class:`TrainStep` is the module the trainer wraps in DistributedDataParallel, so the detector and the
plugins' trainable parameters are synchronised together. The backbone and neck run under ``autocast``
(:class:`AmpSettings`); the head and its losses run in float32 (their ``binary_cross_entropy`` on
probabilities is not autocast-safe, and the assigner's costs need the precision).
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, ContextManager, Dict, List, Sequence

import torch
from torch import nn

from ..models import Detector
from .config import TrainConfig
from .hooks import LossPlugin, StepContext

__all__ = ["AmpSettings", "TrainStep"]


@dataclass(frozen=True)
class AmpSettings:
    """Mixed precision: ``autocast()`` for the backbone/neck forward, float32 for the head and losses."""

    enabled: bool
    device_type: str
    dtype: torch.dtype = torch.float16

    @classmethod
    def from_config(cls, cfg: TrainConfig, device: torch.device) -> "AmpSettings":
        enabled = device.type == "cuda" if cfg.amp is None else bool(cfg.amp)
        return cls(enabled, device.type, getattr(torch, cfg.amp_dtype))

    @property
    def needs_scaler(self) -> bool:
        return self.enabled and self.dtype == torch.float16

    def autocast(self) -> ContextManager[Any]:
        return torch.autocast(self.device_type, dtype=self.dtype) if self.enabled else contextlib.nullcontext()


class TrainStep(nn.Module):
    """Forward + losses of one micro-batch; the module DDP wraps (detector + loss plugins).

    The backbone and neck run under autocast; the head, its losses (whose BCE is not autocast-safe)
    and the plugins run in float32.
    """

    def __init__(self, model: Detector, plugins: Sequence[LossPlugin], amp: AmpSettings) -> None:
        super().__init__()
        self.model = model
        self.plugins = nn.ModuleList(plugins)
        self.amp = amp

    def forward(self, images: torch.Tensor, targets: List[Dict[str, Any]], iteration: int,
                max_iterations: int, epoch: int) -> Dict[str, torch.Tensor]:
        with self.amp.autocast():
            features = self.model.extract_features(images)
        with torch.autocast(self.amp.device_type, enabled=False):
            features = [f.float() for f in features]
            losses = dict(self.model.head.loss(features, targets))
            if len(self.plugins):
                ctx = StepContext(self.model, images, targets, features, dict(losses), iteration, max_iterations,
                                  epoch, self.amp.autocast)
                total = losses["total_loss"]
                for plugin in self.plugins:
                    for name, value in plugin(ctx).items():
                        if name in losses:
                            raise ValueError(f"Loss plugin {plugin.name!r} returned {name!r}, which already exists.")
                        losses[name] = value
                        total = total + value
                losses["total_loss"] = total
        return losses
