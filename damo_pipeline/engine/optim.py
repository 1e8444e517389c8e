"""Optimizer parameter groups and the learning-rate schedule of the official recipe.

* Parameter groups (``spec/training.md`` §4, upstream ``Trainer.build_optimizer``): every trainable
  tensor gets the base weight decay except the weight and bias of norm layers (BatchNorm, SyncBatchNorm,
  GroupNorm, LayerNorm) and every module attribute named ``bias``, which get 0. Officially each tensor is
  its own group; ``merged`` puts tensors with the same decay into one group (the update is identical,
  since the schedule sets the same learning rate on every group).
* Schedule (§5): quadratic warm-up from ``warmup_start_lr``, cosine decay to ``min_lr_ratio * base_lr``,
  then constant for the no-augmentation iterations.
"""
from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass
from typing import Any, Callable, Dict, Iterable, List, Sequence

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from .config import TrainConfig

logger = logging.getLogger(__name__)

__all__ = ["NORM_LAYERS", "OPTIMIZERS", "LRSchedule", "build_optimizer", "param_groups", "set_lr"]

NORM_LAYERS = (_BatchNorm, nn.GroupNorm, nn.LayerNorm)


def _decay_flags(modules: Sequence[nn.Module]) -> Dict[nn.Parameter, bool]:
    """Map every trainable parameter of ``modules`` (in ``named_parameters`` order) to "gets weight decay"."""
    flags: Dict[nn.Parameter, bool] = {}
    for module in modules:
        for _, param in module.named_parameters():
            if param.requires_grad and param not in flags:
                flags[param] = True
        for sub in module.modules():
            if isinstance(sub, NORM_LAYERS):
                for name in ("weight", "bias"):
                    p = getattr(sub, name, None)
                    if isinstance(p, nn.Parameter) and p in flags:
                        flags[p] = False
            bias = getattr(sub, "bias", None)
            if isinstance(bias, nn.Parameter) and bias in flags:
                flags[bias] = False
    return flags


def param_groups(modules: Iterable[nn.Module], weight_decay: float, mode: str = "per_tensor"
                 ) -> List[Dict[str, Any]]:
    """Optimizer parameter groups with the official weight-decay rules.

    Args:
        modules: the detector, plus any extra trainable modules (e.g. distillation align convs).
        weight_decay: decay of conv/linear weights and other non-norm, non-bias tensors.
        mode: ``per_tensor`` (one group per tensor, official) or ``merged`` (one group per decay value).

    Returns:
        groups: dicts with ``params`` (list) and ``weight_decay``.

    Raises:
        ValueError: unknown ``mode`` or no trainable parameters.
    """
    flags = _decay_flags(list(modules))
    if not flags:
        raise ValueError("No trainable parameters found: every parameter has requires_grad=False.")
    if mode == "per_tensor":
        return [{"params": [p], "weight_decay": weight_decay if decay else 0.0} for p, decay in flags.items()]
    if mode == "merged":
        decayed = [p for p, decay in flags.items() if decay]
        plain = [p for p, decay in flags.items() if not decay]
        groups = []
        if decayed:
            groups.append({"params": decayed, "weight_decay": weight_decay})
        if plain:
            groups.append({"params": plain, "weight_decay": 0.0})
        return groups
    raise ValueError(f"param_groups mode must be 'per_tensor' or 'merged', got {mode!r}.")


def _sgd(groups: List[Dict[str, Any]], cfg: TrainConfig) -> torch.optim.Optimizer:
    return torch.optim.SGD(groups, lr=cfg.base_lr, momentum=cfg.momentum, nesterov=cfg.nesterov,
                           weight_decay=cfg.weight_decay)


def _adamw(groups: List[Dict[str, Any]], cfg: TrainConfig) -> torch.optim.Optimizer:
    return torch.optim.AdamW(groups, lr=cfg.base_lr, betas=tuple(cfg.betas), eps=cfg.eps,
                             weight_decay=cfg.weight_decay)


OPTIMIZERS: Dict[str, Callable[[List[Dict[str, Any]], TrainConfig], torch.optim.Optimizer]] = {
    "sgd": _sgd,
    "adamw": _adamw,
}


def build_optimizer(cfg: TrainConfig, modules: Sequence[nn.Module]) -> torch.optim.Optimizer:
    """The recipe's optimizer over ``modules`` (detector first, then extra trainable modules).

    Raises:
        ValueError: ``cfg.optimizer`` is not registered (the message lists the known ones).
    """
    name = cfg.optimizer.lower()
    if name not in OPTIMIZERS:
        raise ValueError(f"Unknown optimizer {cfg.optimizer!r}; known: {sorted(OPTIMIZERS)}.")
    groups = param_groups(modules, cfg.weight_decay, cfg.param_groups)
    optimizer = OPTIMIZERS[name](groups, cfg)
    n_decay = sum(len(g["params"]) for g in groups if g["weight_decay"] > 0)
    n_total = sum(len(g["params"]) for g in groups)
    logger.info("%s: %d parameter tensors in %d groups (%d with weight decay %g, %d without)", name, n_total,
                len(groups), n_decay, cfg.weight_decay, n_total - n_decay)
    return optimizer


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Set the learning rate of every group (the schedule is applied before each step)."""
    for group in optimizer.param_groups:
        group["lr"] = lr


@dataclass(frozen=True)
class LRSchedule:
    """Per-iteration learning rate of the official recipe (0-based global optimizer iteration ``it``).

    * ``it < warmup_iters``: ``(base_lr - warmup_start_lr) * (it / warmup_iters) ** 2 + warmup_start_lr``
    * ``it >= total_iters - no_aug_iters``: ``final_lr = base_lr * min_lr_ratio``
    * otherwise: ``final_lr + (base_lr - final_lr) / 2 * (1 + cos(pi * (it - W) / (T - W - N)))``
    """

    base_lr: float
    total_iters: int
    warmup_iters: int
    no_aug_iters: int
    min_lr_ratio: float = 0.05
    warmup_start_lr: float = 0.0

    @classmethod
    def from_config(cls, cfg: TrainConfig, iters_per_epoch: int) -> "LRSchedule":
        """Schedule for ``cfg`` with ``iters_per_epoch`` optimizer steps per epoch."""
        warmup = int(round(cfg.warmup_epochs * iters_per_epoch))
        if cfg.warmup_epochs > 0:
            warmup = max(warmup, cfg.warmup_min_iters)
        return cls(base_lr=cfg.base_lr, total_iters=cfg.epochs * iters_per_epoch, warmup_iters=warmup,
                   no_aug_iters=cfg.no_aug_epochs * iters_per_epoch, min_lr_ratio=cfg.min_lr_ratio,
                   warmup_start_lr=cfg.warmup_start_lr)

    @property
    def final_lr(self) -> float:
        return self.base_lr * self.min_lr_ratio

    def __call__(self, it: int) -> float:
        if it < self.warmup_iters:
            return (self.base_lr - self.warmup_start_lr) * (it / float(self.warmup_iters)) ** 2 + self.warmup_start_lr
        if it >= self.total_iters - self.no_aug_iters:
            return self.final_lr
        span = self.total_iters - self.warmup_iters - self.no_aug_iters
        if span <= 0:
            return self.final_lr
        return self.final_lr + 0.5 * (self.base_lr - self.final_lr) * (
            1.0 + math.cos(math.pi * (it - self.warmup_iters) / span))

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "LRSchedule":
        return cls(**data)
