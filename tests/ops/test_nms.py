"""Tests for damo_pipeline.ops.torch_nms against a brute-force reference."""

from typing import List, Sequence

import pytest
import torch

from damo_pipeline.ops.torch_nms import batched_nms, multiclass_nms, nms


def _iou(a: Sequence[float], b: Sequence[float]) -> float:
    area_a = (a[2] - a[0]) * (a[3] - a[1])
    area_b = (b[2] - b[0]) * (b[3] - b[1])
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = area_a + area_b - inter
    return float("nan") if union == 0 else inter / union


def reference_batched_nms(boxes: torch.Tensor, scores: torch.Tensor, idxs: torch.Tensor, thr: float) -> List[int]:
    """Textbook greedy class-aware NMS: visit by descending score (ties: lower index first)."""
    b, s, c = boxes.tolist(), scores.tolist(), idxs.tolist()
    keep: List[int] = []
    for i in sorted(range(len(s)), key=lambda k: (-s[k], k)):
        if all(c[j] != c[i] or not _iou(b[i], b[j]) > thr for j in keep):
            keep.append(i)
    return keep


def random_boxes(n: int, generator: torch.Generator, size: float = 100.0) -> torch.Tensor:
    xy = torch.rand(n, 2, generator=generator) * size
    wh = torch.rand(n, 2, generator=generator) * size / 3 + 1
    return torch.cat([xy, xy + wh], dim=1)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("iou_threshold", [0.3, 0.5, 0.7])
def test_batched_nms_matches_reference(seed: int, iou_threshold: float) -> None:
    g = torch.Generator().manual_seed(seed)
    n = 200
    boxes = random_boxes(n, g)
    scores = torch.rand(n, generator=g)
    idxs = torch.randint(0, 1 + seed % 4, (n,), generator=g)
    keep = batched_nms(boxes, scores, idxs, iou_threshold)
    assert keep.dtype == torch.int64
    assert keep.tolist() == reference_batched_nms(boxes, scores, idxs, iou_threshold)


def test_nms_single_class_matches_reference() -> None:
    g = torch.Generator().manual_seed(42)
    boxes = random_boxes(300, g)
    scores = torch.rand(300, generator=g)
    expected = reference_batched_nms(boxes, scores, torch.zeros(300, dtype=torch.int64), 0.5)
    assert nms(boxes, scores, 0.5).tolist() == expected


def test_iou_equal_to_threshold_does_not_suppress() -> None:
    boxes = torch.tensor([[0.0, 0.0, 2.0, 1.0], [0.0, 0.0, 1.0, 1.0]])  # IoU exactly 0.5
    scores = torch.tensor([0.9, 0.8])
    idxs = torch.zeros(2, dtype=torch.int64)
    assert batched_nms(boxes, scores, idxs, 0.5).tolist() == [0, 1]
    assert batched_nms(boxes, scores, idxs, 0.49).tolist() == [0]


def test_other_classes_are_not_suppressed() -> None:
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0]] * 3)
    scores = torch.tensor([0.5, 0.9, 0.7])
    # Box 1 is alone in class 1; in class 0, box 2 (0.7) suppresses box 0 (0.5).
    assert batched_nms(boxes, scores, torch.tensor([0, 1, 0]), 0.5).tolist() == [1, 2]


def test_equal_scores_keep_lower_index() -> None:
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0]] * 3)
    scores = torch.tensor([0.5, 0.5, 0.5])
    assert batched_nms(boxes, scores, torch.zeros(3, dtype=torch.int64), 0.5).tolist() == [0]


def test_empty_boxes_never_suppress() -> None:
    boxes = torch.tensor([[5.0, 5.0, 5.0, 5.0]] * 2)  # zero area: IoU is 0/0, as in torchvision
    scores = torch.tensor([0.9, 0.8])
    assert batched_nms(boxes, scores, torch.zeros(2, dtype=torch.int64), 0.5).tolist() == [0, 1]


def test_empty_input() -> None:
    keep = batched_nms(torch.zeros(0, 4), torch.zeros(0), torch.zeros(0, dtype=torch.int64), 0.5)
    assert keep.shape == (0,) and keep.dtype == torch.int64


def test_bad_shapes_raise() -> None:
    with pytest.raises(ValueError, match="boxes"):
        nms(torch.zeros(3, 5), torch.zeros(3), 0.5)
    with pytest.raises(ValueError, match="idxs"):
        batched_nms(torch.zeros(3, 4), torch.zeros(3), torch.zeros(2, dtype=torch.int64), 0.5)
    with pytest.raises(ValueError, match="scores"):
        multiclass_nms(torch.zeros(3, 2), torch.zeros(4, 4), 0.1, 0.5)


def test_multiclass_nms_matches_reference() -> None:
    g = torch.Generator().manual_seed(7)
    num_anchors, num_classes, thr = 400, 5, 0.6
    boxes = random_boxes(num_anchors, g)
    scores = torch.rand(num_anchors, num_classes, generator=g)
    out_boxes, out_scores, labels = multiclass_nms(scores, boxes, thr, 0.5)

    anchor_idx, cls_idx = [], []
    for a in range(num_anchors):  # anchor-major, then class: the official candidate order
        for k in range(num_classes):
            if scores[a, k] > thr:
                anchor_idx.append(a)
                cls_idx.append(k)
    a_t, k_t = torch.tensor(anchor_idx), torch.tensor(cls_idx)
    expected = reference_batched_nms(boxes[a_t], scores[a_t, k_t], k_t, 0.5)
    assert len(expected) > 500  # so the default max_det=500 truncates
    expected = expected[:500]
    assert labels.dtype == torch.int64
    assert labels.tolist() == k_t[expected].tolist()
    assert torch.equal(out_boxes, boxes[a_t[expected]])
    assert torch.equal(out_scores, scores[a_t, k_t][expected])
    assert torch.all(out_scores[:-1] >= out_scores[1:])


def test_multiclass_nms_threshold_is_strict_and_multilabel() -> None:
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [50.0, 50.0, 60.0, 60.0]])
    scores = torch.tensor([[0.8, 0.6, 0.3], [0.3, 0.1, 0.2]])
    out_boxes, out_scores, labels = multiclass_nms(scores, boxes, 0.3, 0.5)
    # 0.3 == threshold is not a candidate; anchor 0 is kept once per passing class.
    assert labels.tolist() == [0, 1]
    assert out_scores.tolist() == pytest.approx([0.8, 0.6])
    assert torch.equal(out_boxes, boxes[[0, 0]])


def test_multiclass_nms_max_det_keeps_top_scores() -> None:
    g = torch.Generator().manual_seed(3)
    boxes = random_boxes(100, g, size=5000.0)  # spread out: little suppression
    scores = torch.rand(100, 3, generator=g)
    _, all_scores, _ = multiclass_nms(scores, boxes, 0.0, 0.5)
    _, top_scores, _ = multiclass_nms(scores, boxes, 0.0, 0.5, max_det=10)
    assert all_scores.numel() > 10
    assert torch.equal(top_scores, all_scores[:10])


def test_multiclass_nms_no_candidates() -> None:
    out_boxes, out_scores, labels = multiclass_nms(torch.zeros(10, 4), torch.rand(10, 4), 0.5, 0.5)
    assert out_boxes.shape == (0, 4) and out_scores.shape == (0,) and labels.shape == (0,)
