"""Hand-computed checks of QFL, DFL, GIoU loss and the IoU helpers."""

from __future__ import annotations

import math

import pytest
import torch

from damo_pipeline.models.losses import (
    aligned_giou,
    distribution_focal_loss,
    giou_loss,
    pairwise_iou,
    quality_focal_loss,
)


def _bce(p: float, y: float) -> float:
    return -(y * math.log(p) + (1.0 - y) * math.log(1.0 - p))


# ----------------------------------------------------------------------------- QFL
def test_qfl_two_priors_hand_computed() -> None:
    probs = torch.tensor([[0.2, 0.6], [0.1, 0.3]])
    labels = torch.tensor([1, 2])  # prior 0 positive (class 1), prior 1 background (index C = 2)
    scores = torch.tensor([0.8, 0.0])
    out = quality_focal_loss(probs, labels, scores, beta=2.0)

    row0 = _bce(0.2, 0.0) * 0.2**2 + _bce(0.6, 0.8) * abs(0.8 - 0.6) ** 2
    row1 = _bce(0.1, 0.0) * 0.1**2 + _bce(0.3, 0.0) * 0.3**2
    assert out.shape == (2,)
    torch.testing.assert_close(out, torch.tensor([row0, row1]), rtol=1e-6, atol=1e-7)


def test_qfl_negative_label_minus_one_is_background() -> None:
    probs = torch.tensor([[0.25, 0.5]])
    out = quality_focal_loss(probs, torch.tensor([-1]), torch.tensor([0.9]))
    expected = _bce(0.25, 0.0) * 0.25**2 + _bce(0.5, 0.0) * 0.5**2
    torch.testing.assert_close(out, torch.tensor([expected]))


def test_qfl_perfect_quality_is_zero_and_log_clamped() -> None:
    # p == q at the positive and p == 0 elsewhere -> zero loss.
    probs = torch.tensor([[0.0, 0.7]])
    out = quality_focal_loss(probs, torch.tensor([1]), torch.tensor([0.7]))
    torch.testing.assert_close(out, torch.tensor([0.0]), atol=1e-7, rtol=0)
    # p == 1 for a negative: log(1 - p) is clamped at -100 -> 100 * 1**2.
    out = quality_focal_loss(torch.tensor([[1.0]]), torch.tensor([1]), torch.tensor([0.0]))
    torch.testing.assert_close(out, torch.tensor([100.0]))


def test_qfl_gradient_flows_to_probs() -> None:
    probs = torch.tensor([[0.2, 0.6], [0.1, 0.3]], requires_grad=True)
    quality_focal_loss(probs, torch.tensor([1, 2]), torch.tensor([0.8, 0.0])).sum().backward()
    assert probs.grad is not None and torch.all(probs.grad != 0)


def test_qfl_rejects_bad_shapes() -> None:
    with pytest.raises(ValueError, match="labels"):
        quality_focal_loss(torch.rand(3, 2), torch.tensor([0, 1]), torch.rand(3))
    with pytest.raises(ValueError, match="scores"):
        quality_focal_loss(torch.rand(3, 2), torch.tensor([0, 1, 2]), torch.rand(2))


# ----------------------------------------------------------------------------- DFL
def test_dfl_matches_cross_entropy_formula() -> None:
    logits = torch.tensor([[0.3, -1.2, 2.0, 0.5, 0.0], [1.0, 1.0, 1.0, 1.0, 1.0]])
    target = torch.tensor([2.3, 3.0])
    out = distribution_focal_loss(logits, target)

    def ce(row: list[float], idx: int) -> float:
        lse = math.log(sum(math.exp(v) for v in row))
        return lse - row[idx]

    r0 = logits[0].tolist()
    e0 = ce(r0, 2) * (3 - 2.3) + ce(r0, 3) * (2.3 - 2)
    e1 = ce(logits[1].tolist(), 3) * 1.0  # integer target: all weight on bin 3
    torch.testing.assert_close(out, torch.tensor([e0, e1]), rtol=1e-6, atol=1e-6)
    assert abs(e1 - math.log(5.0)) < 1e-6


def test_dfl_minimised_by_two_bin_distribution() -> None:
    # The optimum puts mass (f+1-t, t-f) on bins (f, f+1): loss equals the binary entropy.
    t = 1.25
    probs = torch.tensor([[1e-12, 0.75, 0.25, 1e-12]])
    out = distribution_focal_loss(probs.log(), torch.tensor([t]))
    expected = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    torch.testing.assert_close(out, torch.tensor([expected]), rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------------------- IoU / GIoU
def test_giou_known_boxes() -> None:
    pred = torch.tensor([[0.0, 0.0, 2.0, 2.0], [0.0, 0.0, 1.0, 1.0], [5.0, 5.0, 9.0, 8.0]])
    target = torch.tensor([[1.0, 1.0, 3.0, 3.0], [2.0, 0.0, 3.0, 1.0], [5.0, 5.0, 9.0, 8.0]])
    g = aligned_giou(pred, target)
    # overlap 1, union 7, enclosure 9 | disjoint: IoU 0, union 2, enclosure 3 | identical
    expected = torch.tensor([1 / 7 - 2 / 9, -1 / 3, 1.0])
    torch.testing.assert_close(g, expected)
    torch.testing.assert_close(giou_loss(pred, target), 1 - expected)


def test_giou_degenerate_boxes_use_eps_clamp() -> None:
    pts = torch.tensor([[1.0, 1.0, 1.0, 1.0]])
    # union and enclosure are both 0 -> clamped to 1e-6: IoU 0, GIoU = 0 - (1e-6 - 1e-6) / 1e-6 = 0.
    torch.testing.assert_close(aligned_giou(pts, pts), torch.tensor([0.0]))


def test_giou_gradient() -> None:
    pred = torch.tensor([[0.0, 0.0, 2.0, 2.0]], requires_grad=True)
    giou_loss(pred, torch.tensor([[1.0, 1.0, 3.0, 3.0]])).sum().backward()
    assert pred.grad is not None and torch.isfinite(pred.grad).all() and pred.grad.abs().sum() > 0


def test_pairwise_iou_known_values() -> None:
    a = torch.tensor([[0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 0.0, 0.0]])
    b = torch.tensor([[0.0, 0.0, 10.0, 10.0], [5.0, 5.0, 15.0, 15.0], [20.0, 20.0, 30.0, 30.0]])
    iou = pairwise_iou(a, b)
    expected = torch.tensor([[1.0, 25 / 175, 0.0], [0.0, 0.0, 0.0]])
    torch.testing.assert_close(iou, expected)
    assert pairwise_iou(a, b[:0]).shape == (2, 0)
    assert pairwise_iou(a[:0], b).shape == (0, 3)


def test_iou_rejects_bad_shapes() -> None:
    with pytest.raises(ValueError, match="boxes2"):
        pairwise_iou(torch.rand(2, 4), torch.rand(3, 5))
    with pytest.raises(ValueError, match="same number of rows"):
        aligned_giou(torch.rand(2, 4), torch.rand(3, 4))
