"""Non-maximum suppression in plain torch (torchvision is not a dependency).

The semantics follow the official DAMO-YOLO post-processing
(``damo/utils/boxes.py: postprocess / multiclass_nms``, see ``spec/architecture.md`` §8),
which relies on ``torchvision.ops.batched_nms``:

* a box is suppressed when its IoU with a kept, higher-scoring box of the same
  class is strictly greater than the threshold;
* equal scores are visited in index order (stable sort), so results are
  deterministic;
* IoU is computed as in torchvision's kernel: ``area = (x2 - x1) * (y2 - y1)``
  (no ``+ 1``), and an undefined IoU (two empty boxes, 0 / 0) never suppresses.

All boxes are ``xyxy`` in whatever pixel frame the caller uses.
"""

import logging
from typing import Optional, Tuple

import torch
from torch import Tensor

logger = logging.getLogger(__name__)

__all__ = ["nms", "batched_nms", "multiclass_nms"]


def _pairwise_iou(a: Tensor, b: Tensor) -> Tensor:
    """IoU of every box in ``a`` with every box in ``b``.

    Args:
        a: ``[M, 4]`` xyxy boxes.
        b: ``[N, 4]`` xyxy boxes.

    Returns:
        ``[M, N]`` IoU values (NaN where both boxes are empty, which never
        compares greater than a threshold).
    """
    ax1, ay1, ax2, ay2 = a.t().contiguous().unsqueeze(-1)  # [M, 1] each
    bx1, by1, bx2, by2 = b.t().contiguous()  # [N] each
    area_a = (ax2 - ax1) * (ay2 - ay1)
    area_b = (bx2 - bx1) * (by2 - by1)
    w = (torch.minimum(ax2, bx2) - torch.maximum(ax1, bx1)).clamp_(min=0)
    h = (torch.minimum(ay2, by2) - torch.maximum(ay1, by1)).clamp_(min=0)
    inter = w.mul_(h)
    return inter / (area_a + area_b - inter)


def nms(boxes: Tensor, scores: Tensor, iou_threshold: float, block_size: int = 256,
        max_keep: Optional[int] = None) -> Tensor:
    """Greedy single-class NMS, computed block by block.

    The boxes are sorted by descending score and visited in blocks of
    ``block_size``. A block is first checked against every box kept so far;
    the greedy order inside the block is then resolved by fixed-point
    iteration ("Cluster-NMS": a box survives if no surviving, higher-scoring
    box of the block overlaps it), which reaches exactly the sequential greedy
    result in at most ``block_size`` rounds, usually a few. Memory stays at
    ``O(kept * block_size)``.

    Args:
        boxes: ``[N, 4]`` xyxy boxes.
        scores: ``[N]`` scores.
        iou_threshold: a box is dropped if its IoU with a kept box is ``> iou_threshold``.
        block_size: boxes per block (a speed/memory trade-off only).
        max_keep: stop once this many boxes are kept (the greedy result's first ``max_keep``, exactly).

    Returns:
        ``[M]`` int64 indices into ``boxes`` of the kept boxes, by descending score.
    """
    if boxes.ndim != 2 or boxes.shape[-1] != 4:
        raise ValueError(f"boxes must have shape [N, 4], got {tuple(boxes.shape)}")
    if scores.shape != boxes.shape[:1]:
        raise ValueError(f"scores must have shape [{boxes.shape[0]}], got {tuple(scores.shape)}")
    order = torch.sort(scores, descending=True, stable=True).indices
    work = boxes[order].float()
    kept_boxes = work[:0]
    kept_positions = []
    for start in range(0, work.shape[0], block_size):
        block = work[start : start + block_size]
        alive = ~(_pairwise_iou(kept_boxes, block) > iou_threshold).any(dim=0)
        # overlaps[j, i]: block box j (higher score) would suppress block box i.
        overlaps = torch.triu(_pairwise_iou(block, block) > iou_threshold, diagonal=1)
        survive = alive
        while True:
            updated = alive & ~(overlaps & survive[:, None]).any(dim=0)
            if torch.equal(updated, survive):
                break
            survive = updated
        kept_boxes = torch.cat([kept_boxes, block[survive]])
        kept_positions.append(torch.nonzero(survive, as_tuple=True)[0] + start)
        if max_keep is not None and kept_boxes.shape[0] >= max_keep:
            break
    if not kept_positions:
        return torch.empty(0, dtype=torch.int64, device=boxes.device)
    return order[torch.cat(kept_positions)[:max_keep]]


def batched_nms(boxes: Tensor, scores: Tensor, idxs: Tensor, iou_threshold: float,
                max_keep: Optional[int] = None) -> Tensor:
    """Class-aware NMS: boxes only suppress boxes with the same ``idxs`` value.

    Args:
        boxes: ``[N, 4]`` xyxy boxes.
        scores: ``[N]`` scores.
        idxs: ``[N]`` integer category of each box.
        iou_threshold: suppression happens for IoU strictly greater than this.
        max_keep: keep at most this many per category (exact: the best ``max_keep`` overall are among them).

    Returns:
        ``[M]`` int64 indices of the kept boxes, sorted by descending score
        (ties by ascending index), like ``torchvision.ops.batched_nms``.
    """
    if idxs.shape != scores.shape:
        raise ValueError(f"idxs must have shape {tuple(scores.shape)}, got {tuple(idxs.shape)}")
    if boxes.numel() == 0:
        return torch.empty(0, dtype=torch.int64, device=boxes.device)
    kept = []
    for category in torch.unique(idxs):
        members = torch.nonzero(idxs == category, as_tuple=True)[0]
        kept.append(members[nms(boxes[members], scores[members], iou_threshold, max_keep=max_keep)])
    keep = torch.sort(torch.cat(kept)).values
    return keep[torch.sort(scores[keep], descending=True, stable=True).indices]


def multiclass_nms(
    scores: Tensor,
    boxes: Tensor,
    score_thr: float,
    iou_thr: float,
    max_det: int = 500,
) -> Tuple[Tensor, Tensor, Tensor]:
    """Official DAMO-YOLO post-processing for one image.

    Every (anchor, class) pair whose score is strictly greater than
    ``score_thr`` is a candidate (a box may appear once per passing class),
    candidates go through class-aware NMS, and the first ``max_det`` by
    descending score are kept.

    Args:
        scores: ``[A, K]`` per-class scores (after sigmoid).
        boxes: ``[A, 4]`` xyxy boxes, in network input pixels.
        score_thr: candidate threshold (strict ``>``).
        iou_thr: NMS IoU threshold (strict ``>`` suppresses).
        max_det: maximum number of detections returned.

    Returns:
        ``(boxes [D, 4], scores [D], labels [D] int64)``, by descending score;
        boxes are in the same frame as the input.
    """
    if scores.ndim != 2 or boxes.ndim != 2 or boxes.shape != (scores.shape[0], 4):
        raise ValueError(
            f"expected scores [A, K] and boxes [A, 4], got {tuple(scores.shape)} and {tuple(boxes.shape)}"
        )
    anchor_idx, labels = torch.nonzero(scores > score_thr, as_tuple=True)
    cand_boxes = boxes[anchor_idx]
    cand_scores = scores[anchor_idx, labels]
    keep = batched_nms(cand_boxes, cand_scores, labels, iou_thr, max_keep=max_det)[:max_det]
    logger.debug("multiclass_nms: %d candidates, %d kept", cand_scores.numel(), keep.numel())
    return cand_boxes[keep], cand_scores[keep], labels[keep]
