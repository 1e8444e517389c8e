"""Feature distillation loss of DAMO-YOLO: align, normalise, channel-wise divergence (CWD).

Official scheme (training.md §10): per neck level, a 1x1 conv (with bias) maps student channels to
teacher channels (present even when they are equal); both maps are normalised by a non-affine
BatchNorm on the current batch statistics (never running statistics, never saved: the report's
"BN before distillation"); the loss is the channel-wise KL divergence of spatial softmaxes.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

BN_EPS = 1e-5


def batch_normalize(x: torch.Tensor, eps: float = BN_EPS) -> torch.Tensor:
    """Per-channel normalisation with the batch statistics (biased variance), no affine parameters.

    Equal to ``nn.BatchNorm2d(C, affine=False)`` in train mode, which is how upstream always runs it.
    """
    return F.batch_norm(x, None, None, training=True, momentum=0.0, eps=eps)


def channel_wise_divergence(student: torch.Tensor, teacher: torch.Tensor, tau: float = 1.0) -> torch.Tensor:
    """CWD: ``tau^2 * sum_{n,c} KL(softmax_hw(t/tau) || softmax_hw(s/tau)) / (N * C)``.

    Args:
        student: [N, C, H, W] (already aligned to the teacher's channels).
        teacher: [N, C, H, W].
        tau: softmax temperature.
    """
    if student.shape != teacher.shape:
        raise ValueError(f"Student and teacher features must have the same shape for CWD, got "
                         f"{list(student.shape)} and {list(teacher.shape)}.")
    n, c, h, w = student.shape
    s = student.reshape(n * c, h * w) / tau
    t = teacher.reshape(n * c, h * w) / tau
    p_t = t.softmax(dim=1)
    kl = (p_t * (t.log_softmax(dim=1) - s.log_softmax(dim=1))).sum()
    return kl * tau ** 2 / (n * c)


class FeatureDistillationLoss(nn.Module):
    """Sum over neck levels of CWD between aligned+normalised student and normalised teacher maps.

    Args:
        student_channels: student neck widths (strides 8, 16, 32).
        teacher_channels: teacher neck widths.
        tau: CWD temperature (1.0 upstream).
        loss_weight: multiplier of the summed loss (1.0 upstream).

    The align convs (keys ``align.{i}.weight/bias``) are trainable and belong in the optimizer
    (weights decayed, biases not) and in checkpoints.
    """

    def __init__(self, student_channels: Sequence[int], teacher_channels: Sequence[int], tau: float = 1.0,
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        if len(student_channels) != len(teacher_channels):
            raise ValueError(f"Student has {len(student_channels)} feature levels, teacher {len(teacher_channels)}; "
                             "distillation pairs levels one to one.")
        self.tau = tau
        self.loss_weight = loss_weight
        self.align = nn.ModuleList(nn.Conv2d(s, t, 1, 1, 0, bias=True)
                                   for s, t in zip(student_channels, teacher_channels))

    def forward(self, student_features: Sequence[torch.Tensor], teacher_features: Sequence[torch.Tensor]) -> torch.Tensor:
        if len(student_features) != len(self.align) or len(teacher_features) != len(self.align):
            raise ValueError(f"Expected {len(self.align)} student and teacher feature maps, got "
                             f"{len(student_features)} and {len(teacher_features)}.")
        total = student_features[0].new_zeros(())
        for align, s, t in zip(self.align, student_features, teacher_features):
            if s.shape[-2:] != t.shape[-2:]:
                raise ValueError(f"Student map {list(s.shape)} and teacher map {list(t.shape)} differ in size: "
                                 "teacher and student must see the same input size.")
            s = batch_normalize(align(s))
            t = batch_normalize(t.to(s.dtype))
            total = total + channel_wise_divergence(s, t, self.tau)
        return total * self.loss_weight


def distill_weight(iteration: int, total_iterations: int, final: float = 0.1) -> float:
    """Cosine decay of the distillation weight over the whole run: 1.0 at the start, ``final`` at the end.

    ``w(it) = 1 - (1 - final) * (1 - cos(pi * it / T)) / 2`` (upstream: final 0.1, so 0.55 halfway).
    """
    if total_iterations <= 0:
        raise ValueError(f"total_iterations must be positive, got {total_iterations}.")
    progress = min(max(iteration, 0), total_iterations) / total_iterations
    return 1.0 - (1.0 - final) * (1.0 - math.cos(math.pi * progress)) / 2.0
