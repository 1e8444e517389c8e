"""Extension points of the trainer: loss plugins and callbacks.

* :class:`LossPlugin` adds a training loss computed from the step's model, images, targets and the
  student's neck features (distillation is one: a frozen teacher, align convs, a feature loss). It is an
  ``nn.Module``: its trainable parameters join the optimizer with the same weight-decay rules, it runs
  inside the (DDP-wrapped) training step so its gradients are averaged across processes, and its
  :meth:`LossPlugin.checkpoint_state` is saved in checkpoints and restored on resume. The losses it
  returns are added to ``total_loss`` and logged beside the detection losses.
* :class:`Callback` observes the loop (train/epoch/step start and end, evaluation, checkpoint) without
  changing it: progress reporting, early stopping (``trainer.request_stop()``), custom logging.

Example::

    class L2Features(LossPlugin):
        name = "feat_l2"
        def forward(self, ctx):
            return {"loss_feat_l2": 1e-4 * sum(f.pow(2).mean() for f in ctx.features)}

    Trainer(model, train_set, cfg, out_dir, plugins=[L2Features()]).fit()
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, ContextManager, Dict, List, Sequence

import torch
from torch import nn

if TYPE_CHECKING:  # pragma: no cover
    from .evaluator import EvalResult
    from .trainer import Trainer

__all__ = ["Callback", "LossPlugin", "StepContext", "StepInfo"]


@dataclass
class StepContext:
    """What a :class:`LossPlugin` sees for one micro-batch.

    Attributes:
        model: the detector being trained (unwrapped; in train mode).
        images: ``[N, 3, S, S]`` float RGB 0..255 network input (after augmentation), on the device.
        targets: per-image dicts with ``boxes`` (xyxy, network-input pixels) and ``labels``.
        features: the student's neck outputs at strides 8/16/32 (float32, part of the graph).
        losses: the detection losses of this micro-batch (``total_loss``, ``loss_cls``, ...).
        iteration: 0-based global optimizer iteration this micro-batch contributes to.
        max_iterations: total optimizer iterations of the run.
        epoch: 0-based epoch.
        autocast: ``autocast()`` returns the run's mixed-precision context (a no-op without AMP); plugins
            run in float32 unless they enter it.
    """

    model: nn.Module
    images: torch.Tensor
    targets: Sequence[Dict[str, Any]]
    features: List[torch.Tensor]
    losses: Dict[str, torch.Tensor]
    iteration: int
    max_iterations: int
    epoch: int
    autocast: Callable[[], ContextManager[Any]]


class LossPlugin(nn.Module):
    """Base class of extra training losses (see module docstring).

    Subclasses set :attr:`name` and implement :meth:`forward`, returning named scalar loss tensors
    (names should start with ``loss_``). Parameters with ``requires_grad`` are optimized; frozen modules
    (a teacher) should set ``requires_grad_(False)`` and override :meth:`train` to stay in eval mode, and
    :meth:`checkpoint_state` to leave them out of checkpoints.
    """

    name: str = "plugin"

    def forward(self, ctx: StepContext) -> Dict[str, torch.Tensor]:  # pragma: no cover - abstract
        raise NotImplementedError

    def trainable_modules(self) -> List[nn.Module]:
        """Modules whose ``requires_grad`` parameters join the optimizer (default: the whole plugin)."""
        return [self]

    def grad_clip_parameters(self) -> List[nn.Parameter]:
        """Plugin parameters included in gradient clipping (default none; the official recipe clips the
        student only)."""
        return []

    def checkpoint_state(self) -> Dict[str, torch.Tensor]:
        """Tensors saved with the training checkpoint (default: the full ``state_dict``)."""
        return self.state_dict()

    def load_checkpoint_state(self, state: Dict[str, torch.Tensor]) -> None:
        """Restore what :meth:`checkpoint_state` returned."""
        self.load_state_dict(state, strict=False)


@dataclass
class StepInfo:
    """One finished optimizer step, as callbacks see it.

    Attributes:
        iteration: 0-based global iteration just completed.
        epoch: 0-based epoch.
        epoch_step: micro-batches consumed in this epoch so far.
        lr: learning rate used for the step.
        losses: the last micro-batch's losses (detached tensors; ``.item()`` them if needed).
    """

    iteration: int
    epoch: int
    epoch_step: int
    lr: float
    losses: Dict[str, torch.Tensor]


class Callback:
    """Observer of the training loop; override any subset of the methods (all no-ops here)."""

    def on_train_start(self, trainer: "Trainer") -> None:
        """Before the first step (after resuming)."""

    def on_epoch_start(self, trainer: "Trainer", epoch: int) -> None:
        """Before the first step of ``epoch`` (0-based)."""

    def on_step_end(self, trainer: "Trainer", step: StepInfo) -> None:
        """After every optimizer step (and the EMA update)."""

    def on_evaluate(self, trainer: "Trainer", epoch: int, result: "EvalResult") -> None:
        """After an evaluation (every process receives the result)."""

    def on_epoch_end(self, trainer: "Trainer", epoch: int, record: Dict[str, Any]) -> None:
        """After an epoch's evaluation/checkpoint; ``record`` is the line written to metrics.jsonl."""

    def on_checkpoint(self, trainer: "Trainer", state: Dict[str, Any]) -> None:
        """Before a checkpoint is written; may add JSON/tensor entries to ``state``."""

    def on_train_end(self, trainer: "Trainer", interrupted: bool) -> None:
        """After the loop ends, normally or through Ctrl-C / ``request_stop``."""

