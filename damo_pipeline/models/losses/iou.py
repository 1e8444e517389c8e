"""Box overlap helpers used by the ZeroHead assigner and losses.

Both functions follow the arithmetic of the official DAMO-YOLO ``bbox_overlaps``
(mmdetection style) operation for operation, so that results agree bit for bit
in float32:

* areas are ``(x2 - x1) * (y2 - y1)`` (no ``+1``), and are *not* clamped, so a
  degenerate box (x2 < x1) has a negative area;
* the intersection width/height is clamped at 0;
* the union (and, for GIoU, the enclosing area) is clamped from below at ``eps``
  (1e-6 by default) — ``max(union, eps)``, not ``union + eps``.

Boxes are ``(x1, y1, x2, y2)`` in pixels.
"""

from __future__ import annotations

import logging

import torch

logger = logging.getLogger(__name__)

__all__ = ["pairwise_iou", "aligned_giou"]


def _check_boxes(name: str, boxes: torch.Tensor) -> None:
    if not isinstance(boxes, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(boxes).__name__}")
    if boxes.dim() != 2 or boxes.shape[-1] != 4:
        raise ValueError(f"{name} must have shape [M, 4] (x1, y1, x2, y2), got {tuple(boxes.shape)}")


def pairwise_iou(boxes1: torch.Tensor, boxes2: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """IoU between every box of ``boxes1`` and every box of ``boxes2``.

    Args:
        boxes1: ``[M, 4]`` boxes, xyxy.
        boxes2: ``[G, 4]`` boxes, xyxy.
        eps: lower bound applied to the union area (``union = max(union, eps)``).

    Returns:
        ``[M, G]`` IoU matrix (same dtype as ``boxes1``). Empty inputs give an
        empty ``[M, G]`` result.
    """
    _check_boxes("boxes1", boxes1)
    _check_boxes("boxes2", boxes2)
    if boxes1.shape[0] == 0 or boxes2.shape[0] == 0:
        return boxes1.new_zeros((boxes1.shape[0], boxes2.shape[0]))

    area1 = (boxes1[:, 2] - boxes1[:, 0]) * (boxes1[:, 3] - boxes1[:, 1])  # [M]
    area2 = (boxes2[:, 2] - boxes2[:, 0]) * (boxes2[:, 3] - boxes2[:, 1])  # [G]

    lt = torch.max(boxes1[:, None, :2], boxes2[None, :, :2])  # [M, G, 2]
    rb = torch.min(boxes1[:, None, 2:], boxes2[None, :, 2:])  # [M, G, 2]
    wh = (rb - lt).clamp(min=0)
    overlap = wh[..., 0] * wh[..., 1]  # [M, G]

    union = area1[:, None] + area2[None, :] - overlap
    union = torch.max(union, union.new_tensor([eps]))
    return overlap / union


def aligned_giou(boxes1: torch.Tensor, boxes2: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Generalised IoU between aligned pairs ``boxes1[i]`` / ``boxes2[i]``.

    ``GIoU = IoU - (C - U) / C`` with ``U = max(union, eps)`` and
    ``C = max(enclosing area, eps)``.

    Args:
        boxes1: ``[M, 4]`` boxes, xyxy (e.g. predictions; gradients flow through).
        boxes2: ``[M, 4]`` boxes, xyxy (e.g. targets).
        eps: lower bound applied to the union and to the enclosing area.

    Returns:
        ``[M]`` GIoU values in ``(-1, 1]``.
    """
    _check_boxes("boxes1", boxes1)
    _check_boxes("boxes2", boxes2)
    if boxes1.shape[0] != boxes2.shape[0]:
        raise ValueError(
            f"boxes1 and boxes2 must have the same number of rows for aligned GIoU, "
            f"got {boxes1.shape[0]} and {boxes2.shape[0]}"
        )
    if boxes1.shape[0] == 0:
        return boxes1.new_zeros((0,))

    area1 = (boxes1[:, 2] - boxes1[:, 0]) * (boxes1[:, 3] - boxes1[:, 1])
    area2 = (boxes2[:, 2] - boxes2[:, 0]) * (boxes2[:, 3] - boxes2[:, 1])

    lt = torch.max(boxes1[:, :2], boxes2[:, :2])
    rb = torch.min(boxes1[:, 2:], boxes2[:, 2:])
    wh = (rb - lt).clamp(min=0)
    overlap = wh[:, 0] * wh[:, 1]

    eps_t = overlap.new_tensor([eps])
    union = torch.max(area1 + area2 - overlap, eps_t)
    ious = overlap / union

    enclosed_lt = torch.min(boxes1[:, :2], boxes2[:, :2])
    enclosed_rb = torch.max(boxes1[:, 2:], boxes2[:, 2:])
    enclose_wh = (enclosed_rb - enclosed_lt).clamp(min=0)
    enclose_area = torch.max(enclose_wh[:, 0] * enclose_wh[:, 1], eps_t)
    return ious - (enclose_area - union) / enclose_area
