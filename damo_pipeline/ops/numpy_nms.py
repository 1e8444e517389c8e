"""Non-maximum suppression in numpy, for the engines that run without torch (ONNX Runtime, TensorRT).

Same rules and the same float32 arithmetic as :mod:`damo_pipeline.ops.torch_nms` (the official post-processing):
candidates score strictly above the threshold, a box is suppressed when its IoU with a kept, higher-scoring box
of the same class is strictly greater than the IoU threshold, equal scores are visited in index order, and
``area = (x2 - x1) * (y2 - y1)``. Both implementations keep the same boxes.
"""
from __future__ import annotations

import logging
from typing import Optional, Tuple

import numpy as np

logger = logging.getLogger(__name__)

__all__ = ["batched_nms_numpy", "multiclass_nms_numpy", "nms_numpy"]


def nms_numpy(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float,
              max_keep: Optional[int] = None) -> np.ndarray:
    """Greedy single-class NMS.

    Args:
        boxes: ``[N, 4]`` xyxy boxes.
        scores: ``[N]`` scores.
        iou_threshold: a box is dropped if its IoU with a kept box is ``> iou_threshold``.
        max_keep: stop once this many boxes are kept (the greedy result's first ``max_keep``, exactly).

    Returns:
        ``[M]`` int64 indices of the kept boxes, by descending score (ties by index).
    """
    if boxes.ndim != 2 or boxes.shape[-1] != 4 or scores.shape != boxes.shape[:1]:
        raise ValueError(f"expected boxes [N, 4] and scores [N], got {boxes.shape} and {scores.shape}")
    order = np.argsort(-scores, kind="stable")
    return order[_greedy(boxes[order].astype(np.float32, copy=False), iou_threshold, max_keep)]


def _pairwise_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``[M, N]`` IoU of float32 xyxy boxes, the same arithmetic as the torch NMS (NaN for two empty boxes)."""
    ax1, ay1, ax2, ay2 = (c[:, None] for c in a.T)
    bx1, by1, bx2, by2 = b.T
    area_a = (ax2 - ax1) * (ay2 - ay1)
    area_b = (bx2 - bx1) * (by2 - by1)
    w = np.maximum(np.minimum(ax2, bx2) - np.maximum(ax1, bx1), np.float32(0))
    h = np.maximum(np.minimum(ay2, by2) - np.maximum(ay1, by1), np.float32(0))
    inter = w * h
    with np.errstate(invalid="ignore", divide="ignore"):  # 0 / 0 is NaN, which never suppresses
        return inter / (area_a + area_b - inter)


def _greedy(boxes: np.ndarray, iou_threshold: float, max_keep: Optional[int] = None,
            block_size: int = 256) -> np.ndarray:
    """Positions kept by greedy NMS over boxes already sorted by descending score (at most ``max_keep``).

    Block by block, as :func:`damo_pipeline.ops.torch_nms.nms`: a block is checked against the boxes kept so far,
    then its own greedy order is resolved by fixed-point iteration, which reaches exactly the sequential result.
    """
    kept_boxes = boxes[:0]
    kept_positions = []
    for start in range(0, len(boxes), block_size):
        block = boxes[start:start + block_size]
        alive = ~(_pairwise_iou(kept_boxes, block) > iou_threshold).any(axis=0)
        overlaps = np.triu(_pairwise_iou(block, block) > iou_threshold, k=1)  # [j, i]: j would suppress i
        survive = alive
        while True:
            updated = alive & ~(overlaps & survive[:, None]).any(axis=0)
            if np.array_equal(updated, survive):
                break
            survive = updated
        kept_boxes = np.concatenate([kept_boxes, block[survive]])
        kept_positions.append(np.flatnonzero(survive) + start)
        if max_keep is not None and len(kept_boxes) >= max_keep:
            break
    if not kept_positions:
        return np.empty(0, dtype=np.int64)
    return np.concatenate(kept_positions)[:max_keep]


def batched_nms_numpy(boxes: np.ndarray, scores: np.ndarray, idxs: np.ndarray, iou_threshold: float,
                      max_keep: Optional[int] = None) -> np.ndarray:
    """Class-aware NMS: boxes only suppress boxes with the same ``idxs`` value (at most ``max_keep`` per class).

    Returns:
        ``[M]`` int64 indices of the kept boxes, by descending score (ties by ascending index), like
        :func:`damo_pipeline.ops.torch_nms.batched_nms`.
    """
    if idxs.shape != scores.shape:
        raise ValueError(f"idxs must have shape {scores.shape}, got {idxs.shape}")
    if len(boxes) == 0:
        return np.empty(0, dtype=np.int64)
    order = np.lexsort((np.arange(len(scores)), -scores, idxs))  # by class, then descending score, then index
    starts = np.flatnonzero(np.diff(idxs[order])) + 1
    work = boxes.astype(np.float32, copy=False)
    kept = [group[_greedy(work[group], iou_threshold, max_keep)] for group in np.split(order, starts)]
    keep = np.sort(np.concatenate(kept))
    return keep[np.argsort(-scores[keep], kind="stable")].astype(np.int64)


def multiclass_nms_numpy(scores: np.ndarray, boxes: np.ndarray, score_thr: float, iou_thr: float,
                         max_det: int = 500) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Official DAMO-YOLO post-processing for one image, in numpy.

    Args:
        scores: ``[A, K]`` per-class scores; boxes: ``[A, 4]`` xyxy boxes (input pixels).
        score_thr: candidate threshold (strict ``>``); iou_thr: NMS IoU threshold (strict ``>`` suppresses).
        max_det: maximum number of detections.

    Returns:
        ``(boxes [D, 4], scores [D], labels [D] int64)`` by descending score.
    """
    if scores.ndim != 2 or boxes.ndim != 2 or boxes.shape != (scores.shape[0], 4):
        raise ValueError(f"expected scores [A, K] and boxes [A, 4], got {scores.shape} and {boxes.shape}")
    anchor_idx, labels = np.nonzero(scores > score_thr)
    cand_boxes = boxes[anchor_idx]
    cand_scores = scores[anchor_idx, labels]
    keep = batched_nms_numpy(cand_boxes, cand_scores, labels, iou_thr, max_keep=max_det)[:max_det]
    logger.debug("multiclass_nms_numpy: %d candidates, %d kept", len(cand_scores), len(keep))
    return cand_boxes[keep], cand_scores[keep], labels[keep].astype(np.int64)
