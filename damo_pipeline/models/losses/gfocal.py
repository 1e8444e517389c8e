"""Generalised Focal Loss terms used by ZeroHead: QFL, DFL and the GIoU loss.

All functions return *element-wise* (unreduced) losses; weighting and the
normalisation by the number of positives / the weight sum are done by the caller
(:func:`damo_pipeline.models.losses.zero_head_loss.zero_head_loss`), in the same
order of operations as the official implementation
(``(loss * weight).sum() / avg_factor``, then ``* loss_weight``).

Quality Focal Loss here works on **probabilities** (post-sigmoid), with
``torch.nn.functional.binary_cross_entropy`` (its ``log`` is clamped at -100),
exactly like the official head's ``QualityFocalLoss(use_sigmoid=False)``.
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F

from .iou import aligned_giou

logger = logging.getLogger(__name__)

__all__ = ["quality_focal_loss", "distribution_focal_loss", "giou_loss"]


def quality_focal_loss(
    probs: torch.Tensor,
    labels: torch.Tensor,
    scores: torch.Tensor,
    beta: float = 2.0,
) -> torch.Tensor:
    """Quality Focal Loss on probabilities, summed over classes per row.

    Every (row, class) element gets ``BCE(p, 0) * p**beta``; for a positive row
    (``0 <= labels[i] < C``) the element at its own class is replaced by
    ``BCE(p, q) * |q - p|**beta`` with ``q = scores[i]``. Rows whose label is
    outside ``[0, C)`` (e.g. the background index ``C`` or ``-1``) are negatives.

    Args:
        probs: ``[M, C]`` predicted probabilities in ``[0, 1]``.
        labels: ``[M]`` integer class targets; ``0..C-1`` positive, anything else negative.
        scores: ``[M]`` soft quality targets (IoU) in ``[0, 1]``; only read at positives.
        beta: exponent of the modulating factor.

    Returns:
        ``[M]`` per-row loss (sum over the ``C`` classes).
    """
    if probs.dim() != 2:
        raise ValueError(f"probs must have shape [M, C], got {tuple(probs.shape)}")
    m, c = probs.shape
    if labels.shape != (m,):
        raise ValueError(f"labels must have shape [{m}], got {tuple(labels.shape)}")
    if scores.shape != (m,):
        raise ValueError(f"scores must have shape [{m}], got {tuple(scores.shape)}")

    # Negatives: supervised towards 0 with modulating factor p**beta.
    loss = F.binary_cross_entropy(probs, torch.zeros_like(probs), reduction="none") * probs.pow(beta)

    pos = ((labels >= 0) & (labels < c)).nonzero(as_tuple=False).squeeze(1)
    if pos.numel() > 0:
        pos_labels = labels[pos].long()
        pos_probs = probs[pos, pos_labels]
        pos_scores = scores[pos].to(probs.dtype)
        pos_loss = F.binary_cross_entropy(pos_probs, pos_scores, reduction="none") * (
            (pos_scores - pos_probs).abs().pow(beta)
        )
        # Out-of-place scatter keeps autograd clean (no in-place write into a saved tensor).
        loss = loss.index_put((pos, pos_labels), pos_loss)
    return loss.sum(dim=1)


def distribution_focal_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Distribution Focal Loss for one side distribution per row.

    With ``f = floor(t)`` (``t >= 0``): ``CE(logits, f) * (f + 1 - t) + CE(logits, f + 1) * (t - f)``.
    The target must satisfy ``0 <= t < R`` (``R + 1`` bins) so that ``f + 1`` is a
    valid bin; ZeroHead clamps targets to ``[0, R - 0.1]``.

    Args:
        logits: ``[M, R + 1]`` regression logits (before softmax) of one box side each.
        target: ``[M]`` target distances in bin units (stride units for ZeroHead).

    Returns:
        ``[M]`` per-row loss.
    """
    if logits.dim() != 2:
        raise ValueError(f"logits must have shape [M, R+1], got {tuple(logits.shape)}")
    if target.shape != (logits.shape[0],):
        raise ValueError(f"target must have shape [{logits.shape[0]}], got {tuple(target.shape)}")
    dis_left = target.long()  # truncation == floor for non-negative targets
    dis_right = dis_left + 1
    weight_left = dis_right.to(target.dtype) - target
    weight_right = target - dis_left.to(target.dtype)
    return (
        F.cross_entropy(logits, dis_left, reduction="none") * weight_left
        + F.cross_entropy(logits, dis_right, reduction="none") * weight_right
    )


def giou_loss(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Element-wise GIoU loss ``1 - GIoU(pred, target)``.

    Args:
        pred: ``[M, 4]`` predicted boxes, xyxy.
        target: ``[M, 4]`` target boxes, xyxy.
        eps: lower bound for union and enclosing area.

    Returns:
        ``[M]`` per-box loss in ``[0, 2)``.
    """
    return 1 - aligned_giou(pred, target, eps=eps)
