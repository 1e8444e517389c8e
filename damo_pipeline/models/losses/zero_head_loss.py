"""Training loss of the ZeroHead: AlignedOTA assignment + QFL + GIoU + DFL.

Implements ``training.md`` §7 with the official order of operations
(``damo/base_models/heads/zero_head.py``: ``loss`` / ``get_target_single``):

* per image, AlignedOTA on detached probabilities / decoded boxes;
* class targets: background index ``num_classes`` for negatives, the GT class
  with soft score = IoU(pred, GT) for positives;
* DFL targets per side in stride units, computed as ``x / s - x1 / s`` etc. and
  clamped to ``[0, reg_max - 0.1]``;
* ``avg_pos = max(mean_over_ranks(num_pos), 1)``;
  ``norm = max(mean_over_ranks(sum of w_i), 1)`` with ``w_i`` the (detached) max
  class probability of positive ``i`` over all columns;
* ``loss_cls = 1.0 * sum(QFL) / avg_pos``,
  ``loss_bbox = 2.0 * sum(w_i * (1 - GIoU_i)) / norm``,
  ``loss_dfl = 0.25 * sum(w_i * DFL_side) / (4 * norm)``.

The cross-rank means use ``torch.distributed.all_reduce`` only when a process group
is initialised; they are executed on every rank whether or not it has positives,
so collective calls always match across ranks.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import torch
import torch.distributed as dist

from ..assigners.aligned_ota import AlignedOTAAssigner
from .gfocal import distribution_focal_loss, giou_loss, quality_focal_loss

logger = logging.getLogger(__name__)

__all__ = ["zero_head_loss", "build_zero_head_targets", "bbox2distance", "QFL_WEIGHT", "GIOU_WEIGHT", "DFL_WEIGHT"]

QFL_WEIGHT = 1.0
QFL_BETA = 2.0
GIOU_WEIGHT = 2.0
DFL_WEIGHT = 0.25
GIOU_EPS = 1e-6

def _reduce_mean(tensor: torch.Tensor) -> torch.Tensor:
    """Mean over all ranks when torch.distributed is initialised; identity otherwise."""
    if not (dist.is_available() and dist.is_initialized()):
        return tensor
    tensor = tensor.clone()
    dist.all_reduce(tensor.div_(dist.get_world_size()), op=dist.ReduceOp.SUM)
    return tensor


def bbox2distance(
    points: torch.Tensor, boxes: torch.Tensor, max_dis: float | None = None, eps: float = 0.1
) -> torch.Tensor:
    """Distances from points to the four box sides (left, top, right, bottom).

    Args:
        points: ``[M, 2]`` points ``(x, y)``.
        boxes: ``[M, 4]`` boxes, xyxy, in the same units as ``points``.
        max_dis: if given, distances are clamped to ``[0, max_dis - eps]``.
        eps: margin below ``max_dis``.

    Returns:
        ``[M, 4]`` distances ``(x - x1, y - y1, x2 - x, y2 - y)``.
    """
    left = points[:, 0] - boxes[:, 0]
    top = points[:, 1] - boxes[:, 1]
    right = boxes[:, 2] - points[:, 0]
    bottom = boxes[:, 3] - points[:, 1]
    dist_ = torch.stack([left, top, right, bottom], dim=-1)
    if max_dis is not None:
        dist_ = dist_.clamp(min=0, max=max_dis - eps)
    return dist_


def _validate_inputs(
    cls_probs: torch.Tensor,
    reg_logits: torch.Tensor,
    decoded_boxes: torch.Tensor,
    priors: torch.Tensor,
    targets: Sequence[dict],
    num_classes: int,
    reg_max: int,
) -> None:
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
    if not isinstance(reg_max, int) or reg_max < 1:
        raise ValueError(f"reg_max must be a positive int, got {reg_max!r}")
    tensors = (("cls_probs", cls_probs), ("reg_logits", reg_logits), ("decoded_boxes", decoded_boxes), ("priors", priors))
    for name, t in tensors:
        if not isinstance(t, torch.Tensor):
            raise ValueError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if not t.is_floating_point():
            raise ValueError(f"{name} must be floating point, got dtype {t.dtype}")
    if cls_probs.dim() != 3:
        raise ValueError(f"cls_probs must have shape [N, A, K], got {tuple(cls_probs.shape)}")
    n, a, k = cls_probs.shape
    if k not in (num_classes, num_classes + 1):
        raise ValueError(
            f"cls_probs last dim must be num_classes ({num_classes}) or num_classes + 1 (legacy head), got {k}"
        )
    if reg_logits.shape != (n, a, 4, reg_max + 1):
        raise ValueError(f"reg_logits must have shape [{n}, {a}, 4, {reg_max + 1}], got {tuple(reg_logits.shape)}")
    if decoded_boxes.shape != (n, a, 4):
        raise ValueError(f"decoded_boxes must have shape [{n}, {a}, 4], got {tuple(decoded_boxes.shape)}")
    if priors.shape != (a, 4):
        raise ValueError(f"priors must have shape [{a}, 4] (x, y, stride, stride), got {tuple(priors.shape)}")
    if not isinstance(targets, Sequence) or len(targets) != n:
        got = len(targets) if isinstance(targets, Sequence) else type(targets).__name__
        raise ValueError(f"targets must be a list of {n} dicts (one per image), got {got}")
    for i, tgt in enumerate(targets):
        if not isinstance(tgt, dict) or "boxes" not in tgt or "labels" not in tgt:
            raise ValueError(f"targets[{i}] must be a dict with 'boxes' and 'labels'")
        boxes, labels = tgt["boxes"], tgt["labels"]
        if not isinstance(boxes, torch.Tensor) or boxes.dim() != 2 or boxes.shape[1] != 4:
            shape = tuple(boxes.shape) if isinstance(boxes, torch.Tensor) else type(boxes).__name__
            raise ValueError(f"targets[{i}]['boxes'] must be a tensor of shape [K, 4] (xyxy), got {shape}")
        if not isinstance(labels, torch.Tensor) or labels.shape != (boxes.shape[0],):
            shape = tuple(labels.shape) if isinstance(labels, torch.Tensor) else type(labels).__name__
            raise ValueError(f"targets[{i}]['labels'] must be a tensor of shape [{boxes.shape[0]}], got {shape}")
        if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
            raise ValueError(f"targets[{i}]['labels'] must be an integer tensor, got dtype {labels.dtype}")
        if labels.numel() > 0:
            lo, hi = int(labels.min()), int(labels.max())
            if lo < 0 or hi >= num_classes:
                raise ValueError(
                    f"targets[{i}]['labels'] values must be in [0, {num_classes - 1}], got min {lo} max {hi}"
                )


@torch.no_grad()
def build_zero_head_targets(
    cls_probs: torch.Tensor,
    decoded_boxes: torch.Tensor,
    priors: torch.Tensor,
    targets: Sequence[dict],
    num_classes: int,
    reg_max: int,
    assigner: AlignedOTAAssigner | None = None,
) -> dict[str, torch.Tensor]:
    """Assign every image and build the flattened ZeroHead training targets.

    Args:
        cls_probs: ``[N, A, K]`` class probabilities (detached internally).
        decoded_boxes: ``[N, A, 4]`` decoded predictions, xyxy (detached internally).
        priors: ``[A, 4]`` rows ``(x, y, stride, stride)``.
        targets: ``N`` dicts with ``boxes`` ``[K_i, 4]`` and ``labels`` ``[K_i]``.
        num_classes: number of real classes (background index = ``num_classes``).
        reg_max: largest DFL bin index ``R``.
        assigner: assigner to use (default: AlignedOTA with the official parameters).

    Returns:
        Dict of flattened (``N*A`` rows, image-major) tensors:
        ``labels`` ``[N*A]`` long (``num_classes`` = background),
        ``label_scores`` ``[N*A]`` float (IoU at positives, 0 elsewhere),
        ``bbox_targets`` ``[N*A, 4]`` (GT box at positives, 0 elsewhere),
        ``dfl_targets`` ``[N*A, 4]`` (stride-unit distances at positives, 0 elsewhere),
        ``num_pos`` 0-dim long tensor.
    """
    assigner = assigner if assigner is not None else AlignedOTAAssigner()
    n, a, _ = cls_probs.shape
    device = cls_probs.device
    priors = priors.detach().to(device=device, dtype=torch.float32)

    labels = torch.full((n, a), num_classes, dtype=torch.long, device=device)
    label_scores = torch.zeros((n, a), dtype=torch.float32, device=device)
    bbox_targets = torch.zeros((n, a, 4), dtype=torch.float32, device=device)
    dfl_targets = torch.zeros((n, a, 4), dtype=torch.float32, device=device)
    num_pos = 0

    for i, tgt in enumerate(targets):
        gt_boxes = tgt["boxes"].to(device=device, dtype=torch.float32)
        gt_labels = tgt["labels"].to(device=device, dtype=torch.long)
        if gt_labels.numel() == 0:
            continue
        res = assigner.assign(cls_probs[i].detach(), priors, decoded_boxes[i].detach(), gt_boxes, gt_labels)
        pos = res.pos_mask.nonzero(as_tuple=False).squeeze(1)
        if pos.numel() == 0:
            continue
        num_pos += pos.numel()
        pos_gt = gt_boxes[res.gt_inds[pos]]  # [P, 4]
        stride = priors[pos, 2:3]  # [P, 1]
        labels[i, pos] = res.labels[pos]
        label_scores[i, pos] = res.ious[pos]
        bbox_targets[i, pos] = pos_gt
        # Official order: both point and box divided by the stride first, then subtracted.
        dfl_targets[i, pos] = bbox2distance(priors[pos, :2] / stride, pos_gt / stride, max_dis=reg_max)

    return {
        "labels": labels.reshape(-1),
        "label_scores": label_scores.reshape(-1),
        "bbox_targets": bbox_targets.reshape(-1, 4),
        "dfl_targets": dfl_targets.reshape(-1, 4),
        "num_pos": torch.tensor(num_pos, dtype=torch.long, device=device),
    }


def zero_head_loss(
    cls_probs: torch.Tensor,
    reg_logits: torch.Tensor,
    decoded_boxes: torch.Tensor,
    priors: torch.Tensor,
    targets: list[dict],
    num_classes: int,
    reg_max: int,
) -> dict[str, torch.Tensor]:
    """ZeroHead training loss (QFL + GIoU + DFL) with AlignedOTA assignment.

    Args:
        cls_probs: ``[N, A, K]`` sigmoid class probabilities (``K = num_classes``,
            or ``num_classes + 1`` for a legacy head; all columns enter QFL, the
            assignment cost and the positive weights, as in the official code).
        reg_logits: ``[N, A, 4, R+1]`` Scale-multiplied regression logits before
            softmax; side order left, top, right, bottom.
        decoded_boxes: ``[N, A, 4]`` xyxy boxes in input pixels decoded from ``reg_logits``.
        priors: ``[A, 4]`` rows ``(x, y, stride, stride)``; ``x = j*s``, ``y = i*s``.
        targets: ``N`` dicts ``{"boxes": [K_i, 4] xyxy pixels, "labels": [K_i] in 0..num_classes-1}``.
        num_classes: number of classes (background label = ``num_classes``).
        reg_max: ``R``, the largest DFL bin index.

    Returns:
        Dict with scalar tensors ``total_loss``, ``loss_cls``, ``loss_bbox``,
        ``loss_dfl`` (already weighted; ``total_loss`` is their sum).

    Raises:
        ValueError: on wrong shapes, wrong target structure or out-of-range labels.
    """
    _validate_inputs(cls_probs, reg_logits, decoded_boxes, priors, targets, num_classes, reg_max)
    n, a, k = cls_probs.shape
    device = cls_probs.device

    cls_probs = cls_probs.float()
    reg_logits = reg_logits.float()
    decoded_boxes = decoded_boxes.float()

    tg = build_zero_head_targets(cls_probs, decoded_boxes, priors, targets, num_classes, reg_max)
    labels = tg["labels"]
    num_pos = tg["num_pos"]

    avg_pos = max(_reduce_mean(num_pos.to(torch.float32)).item(), 1.0)

    flat_probs = cls_probs.reshape(n * a, k)
    flat_reg = reg_logits.reshape(n * a, 4 * (reg_max + 1))
    flat_boxes = decoded_boxes.reshape(n * a, 4)

    qfl = quality_focal_loss(flat_probs, labels, tg["label_scores"], beta=QFL_BETA)  # [N*A]
    loss_cls = QFL_WEIGHT * (qfl.sum() / avg_pos)

    pos = ((labels >= 0) & (labels < num_classes)).nonzero(as_tuple=False).squeeze(1)
    weight_targets = flat_probs.detach().max(dim=1).values[pos]  # [P]
    # Always all-reduced (even with no positive) so every rank issues the same collectives.
    norm = max(_reduce_mean(weight_targets.sum()).item(), 1.0)

    if pos.numel() > 0:
        gl = giou_loss(flat_boxes[pos], tg["bbox_targets"][pos], eps=GIOU_EPS)  # [P]
        loss_bbox = GIOU_WEIGHT * ((gl * weight_targets).sum() / (1.0 * norm))

        dfl = distribution_focal_loss(
            flat_reg[pos].reshape(-1, reg_max + 1), tg["dfl_targets"][pos].reshape(-1)
        )  # [P*4]
        dfl_w = weight_targets[:, None].expand(-1, 4).reshape(-1)
        loss_dfl = DFL_WEIGHT * ((dfl * dfl_w).sum() / (4.0 * norm))
    else:
        # Keep the regression branch in the graph (DDP) with a zero value; like the
        # official head, use the (non-negative) bin probabilities so the zero is +0.
        reg_probs_sum = reg_logits.softmax(dim=-1).sum()
        loss_bbox = reg_probs_sum / norm * 0.0
        loss_dfl = reg_probs_sum / norm * 0.0
        logger.info(
            "No positive samples on %s; loss_bbox=%.3f loss_dfl=%.3f loss_cls=%.3f",
            device,
            loss_bbox.item(),
            loss_dfl.item(),
            loss_cls.item(),
        )

    total_loss = loss_cls + loss_bbox + loss_dfl
    return {
        "total_loss": total_loss,
        "loss_cls": loss_cls,
        "loss_bbox": loss_bbox,
        "loss_dfl": loss_dfl,
    }
