"""Non-maximum suppression in numpy, for the engines that run without torch (ONNX Runtime, TensorRT).

Same rules and the same float32 arithmetic as :mod:`damo_pipeline.ops.torch_nms` (the official post-processing):
candidates score strictly above the threshold, a box is suppressed when its IoU with a kept, higher-scoring box
of the same class is strictly greater than the IoU threshold, equal scores are visited in index order, and
``area = (x2 - x1) * (y2 - y1)``. Both implementations keep the same boxes.
"""
from __future__ import annotations

import logging
from typing import Tuple

import numpy as np

logger = logging.getLogger(__name__)

__all__ = ["batched_nms_numpy", "multiclass_nms_numpy", "nms_numpy"]


def nms_numpy(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy single-class NMS.

    Args:
        boxes: ``[N, 4]`` xyxy boxes.
        scores: ``[N]`` scores.
        iou_threshold: a box is dropped if its IoU with a kept box is ``> iou_threshold``.

    Returns:
        ``[M]`` int64 indices of the kept boxes, by descending score (ties by index).
    """
    if boxes.ndim != 2 or boxes.shape[-1] != 4 or scores.shape != boxes.shape[:1]:
        raise ValueError(f"expected boxes [N, 4] and scores [N], got {boxes.shape} and {scores.shape}")
    order = np.argsort(-scores, kind="stable")
    return order[_greedy(boxes[order].astype(np.float32, copy=False), iou_threshold)]


def _greedy(boxes: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Positions kept by greedy NMS over boxes already sorted by descending score."""
    x1, y1, x2, y2 = (np.ascontiguousarray(c) for c in boxes.T)
    areas = (x2 - x1) * (y2 - y1)
    alive = np.ones(len(boxes), dtype=bool)
    for i in range(len(boxes)):
        if not alive[i]:
            continue
        rest = slice(i + 1, None)
        w = np.maximum(np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]), np.float32(0))
        h = np.maximum(np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]), np.float32(0))
        inter = w * h
        with np.errstate(invalid="ignore", divide="ignore"):  # 0 / 0 (two empty boxes) is NaN: never suppresses
            iou = inter / (areas[i] + areas[rest] - inter)
        alive[rest] &= ~(iou > iou_threshold)
    return np.flatnonzero(alive)


def batched_nms_numpy(boxes: np.ndarray, scores: np.ndarray, idxs: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Class-aware NMS: boxes only suppress boxes with the same ``idxs`` value.

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
    kept = [group[_greedy(work[group], iou_threshold)] for group in np.split(order, starts)]
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
    keep = batched_nms_numpy(cand_boxes, cand_scores, labels, iou_thr)[:max_det]
    logger.debug("multiclass_nms_numpy: %d candidates, %d kept", len(cand_scores), len(keep))
    return cand_boxes[keep], cand_scores[keep], labels[keep].astype(np.int64)
