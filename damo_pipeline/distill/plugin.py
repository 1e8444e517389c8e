"""Distillation as a training-engine loss plugin: the trainer stays the same, the plugin adds a loss."""
from __future__ import annotations

from typing import Dict

import torch

from ..engine.hooks import LossPlugin, StepContext
from ..models import Detector
from .feature_loss import FeatureDistillationLoss, distill_weight
from .teacher import FrozenTeacher, check_pair

DISTILL_GRAD_CLIP = 30.0


class FeatureDistillation(LossPlugin):
    """Adds ``loss_distill = w(it) * CWD(align(student neck), teacher neck)`` to every training step.

    Args:
        teacher: a trained detector with the student's class list (kept frozen, in eval mode, fp16 on CUDA).
        student: the detector being trained (for the channel widths and the pair check).
        loss_weight: multiplier of the feature loss (official 1.0).
        final_weight: value the cosine weight schedule reaches at the end of the run (official 0.1).
        tau: CWD temperature (official 1.0).

    The align convs are trainable plugin parameters (optimised with the student, saved in checkpoints);
    the teacher is a plain attribute, so it is neither trained, checkpointed nor wrapped by DDP.
    """

    name = "distill"

    def __init__(self, teacher: Detector, student: Detector, loss_weight: float = 1.0, final_weight: float = 0.1,
                 tau: float = 1.0) -> None:
        super().__init__()
        check_pair(teacher, student)
        self.final_weight = final_weight
        self.feature_loss = FeatureDistillationLoss(student.neck.out_channels, teacher.neck.out_channels, tau,
                                                    loss_weight)
        self.teacher = FrozenTeacher(teacher, device=torch.device("cpu"), half=False)

    def forward(self, ctx: StepContext) -> Dict[str, torch.Tensor]:
        device = ctx.images.device
        if self.teacher.device != device:
            self.teacher = FrozenTeacher(self.teacher.model, device=device)
        teacher_features = self.teacher.features(ctx.images)
        weight = distill_weight(ctx.iteration, max(1, ctx.max_iterations), self.final_weight)
        return {"loss_distill": weight * self.feature_loss(ctx.features, teacher_features)}
