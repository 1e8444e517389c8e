"""AlignedOTA assigner on tiny hand-made cases, plus a loop-based cross-check."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from damo_pipeline.models.assigners import AlignedOTAAssigner
from damo_pipeline.models.losses import pairwise_iou

GT = torch.tensor([[10.0, 10.0, 40.0, 30.0]])  # centre (25, 20); centre region +-20 px at stride 8
# P0, P1, P2: inside the box and the centre region; P3: only inside the centre region
# (valid but penalised); P4: far away (not a candidate).
PRIORS = torch.tensor(
    [
        [16.0, 16.0, 8.0, 8.0],
        [24.0, 16.0, 8.0, 8.0],
        [32.0, 24.0, 8.0, 8.0],
        [8.0, 8.0, 8.0, 8.0],
        [96.0, 96.0, 8.0, 8.0],
    ]
)
SCORES = torch.full((5, 2), 0.1)


def _boxes(*rows: list[float]) -> torch.Tensor:
    return torch.tensor(rows)


def test_dynamic_k_two_from_iou_sum() -> None:
    # IoUs with the GT: 1.0, 0.6, 0.5, 0.0 (P3), 1.0 (P4, not valid) -> k = int(2.1) = 2.
    dec = _boxes(
        [10, 10, 40, 30],
        [10, 10, 40, 22],
        [10, 10, 40, 20],
        [100, 100, 110, 110],
        [10, 10, 40, 30],
    )
    res = AlignedOTAAssigner().assign(SCORES, PRIORS, dec, GT, torch.tensor([1]))
    assert res.gt_inds.tolist() == [0, 0, -1, -1, -1]
    assert res.labels.tolist() == [1, 1, -1, -1, -1]
    torch.testing.assert_close(res.ious, torch.tensor([1.0, 0.6, 0.0, 0.0, 0.0]))
    assert res.num_pos == 2
    assert res.pos_mask.tolist() == [True, True, False, False, False]


def test_dynamic_k_three_skips_penalised_prior() -> None:
    # IoUs 1.0, 0.5, 0.5, 1.0 -> k = 3. P3 has IoU 1 but is outside the box, so its
    # 1e8 penalty ranks it last: P0, P1, P2 are taken.
    dec = _boxes(
        [10, 10, 40, 30],
        [10, 10, 40, 20],
        [10, 10, 25, 30],
        [10, 10, 40, 30],
        [10, 10, 40, 30],
    )
    res = AlignedOTAAssigner().assign(SCORES, PRIORS, dec, GT, torch.tensor([1]))
    assert res.gt_inds.tolist() == [0, 0, 0, -1, -1]
    torch.testing.assert_close(res.ious, torch.tensor([1.0, 0.5, 0.5, 0.0, 0.0]))


def test_penalised_prior_taken_when_k_exceeds_in_region_count() -> None:
    # All four candidates predict the GT exactly -> k = 4 > 3 in-region priors, so P3 is
    # taken too (last, despite the penalty).
    dec = GT.expand(5, 4).clone()
    res = AlignedOTAAssigner().assign(SCORES, PRIORS, dec, GT, torch.tensor([0]))
    assert res.gt_inds.tolist() == [0, 0, 0, 0, -1]
    assert res.labels.tolist() == [0, 0, 0, 0, -1]


def test_k_is_at_least_one() -> None:
    # No overlap at all anywhere -> k = max(1, 0) = 1: the lowest-cost in-region prior.
    dec = torch.tensor([[200.0, 200.0, 210.0, 210.0]]).expand(5, 4).clone()
    scores = SCORES.clone()
    scores[2, 1] = 0.01  # lower classification cost for P2 (target 0 since IoU 0)
    res = AlignedOTAAssigner().assign(scores, PRIORS, dec, GT, torch.tensor([1]))
    assert res.gt_inds.tolist() == [-1, -1, 0, -1, -1]
    assert res.ious[2].item() == 0.0


def test_topk_parameter_limits_dynamic_k() -> None:
    dec = GT.expand(5, 4).clone()
    res = AlignedOTAAssigner(topk=2).assign(SCORES, PRIORS, dec, GT, torch.tensor([0]))
    assert res.num_pos == 2


def test_conflict_keeps_lowest_cost_gt() -> None:
    # Two overlapping GTs, a single candidate prior: both GTs pick it (k = 1 each) and it
    # keeps GT 0, whose cost is lower (IoU 1, confident class-0 score).
    gts = torch.tensor([[10.0, 10.0, 40.0, 30.0], [12.0, 12.0, 42.0, 32.0]])
    priors = torch.tensor([[16.0, 16.0, 8.0, 8.0]])
    dec = gts[:1].clone()
    scores = torch.tensor([[0.8, 0.05]])
    res = AlignedOTAAssigner().assign(scores, priors, dec, gts, torch.tensor([0, 1]))
    assert res.gt_inds.tolist() == [0]
    assert res.labels.tolist() == [0]
    torch.testing.assert_close(res.ious, torch.tensor([1.0]))

    # Swap the class confidences: now GT 1 is cheaper despite its lower IoU (504 / 696).
    res = AlignedOTAAssigner().assign(torch.tensor([[0.05, 0.8]]), priors, dec, gts, torch.tensor([0, 1]))
    assert res.gt_inds.tolist() == [1]
    torch.testing.assert_close(res.ious, torch.tensor([504.0 / 696.0]))


def test_no_gt_and_no_candidate() -> None:
    dec = GT.expand(5, 4).clone()
    res = AlignedOTAAssigner().assign(SCORES, PRIORS, dec, torch.zeros(0, 4), torch.zeros(0, dtype=torch.long))
    assert res.gt_inds.tolist() == [-1] * 5 and res.labels.tolist() == [-1] * 5 and res.num_pos == 0
    assert res.num_gts == 0
    far = torch.tensor([[1000.0, 1000.0, 1010.0, 1010.0]])
    res = AlignedOTAAssigner().assign(SCORES, PRIORS, dec, far, torch.tensor([0]))
    assert res.num_pos == 0 and res.ious.sum().item() == 0.0


def test_strict_inequalities_on_borders() -> None:
    # A prior exactly on the box border (distance 0) is not "inside"; one exactly on the
    # centre-region border is not "in centre" either.
    gt = torch.tensor([[16.0, 16.0, 56.0, 56.0]])  # centre (36, 36), centre region (16, 56) at stride 8
    priors = torch.tensor([[16.0, 24.0, 8.0, 8.0], [24.0, 24.0, 8.0, 8.0]])
    dec = gt.expand(2, 4).clone()
    res = AlignedOTAAssigner().assign(torch.full((2, 1), 0.5), priors, dec, gt, torch.tensor([0]))
    assert res.gt_inds.tolist() == [-1, 0]


def test_inputs_are_not_differentiated() -> None:
    scores = SCORES.clone().requires_grad_()
    dec = GT.expand(5, 4).clone().requires_grad_()
    res = AlignedOTAAssigner().assign(scores, PRIORS, dec, GT, torch.tensor([1]))
    assert not res.ious.requires_grad


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"gt_labels": torch.tensor([2])}, "gt_labels"),
        ({"gt_labels": torch.tensor([-1])}, "gt_labels"),
        ({"gt_labels": torch.tensor([0.0])}, "gt_labels"),
        ({"gt_boxes": torch.zeros(1, 5)}, "gt_boxes"),
        ({"priors": torch.zeros(4, 4)}, "priors"),
        ({"decoded_boxes": torch.zeros(5, 2)}, "decoded_boxes"),
        ({"pred_scores": torch.zeros(5)}, "pred_scores"),
    ],
)
def test_validation_errors_name_the_input(kwargs: dict, match: str) -> None:
    args = {
        "pred_scores": SCORES,
        "priors": PRIORS,
        "decoded_boxes": GT.expand(5, 4).clone(),
        "gt_boxes": GT,
        "gt_labels": torch.tensor([1]),
    }
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        AlignedOTAAssigner().assign(**args)


# ----------------------------------------------------------------------------- cross-check
def _loop_reference(scores, priors, dec, gts, labels, radius=2.5, topk=10):
    """Direct, loop-based rendering of training.md §7.1 (slow, for testing only)."""
    num_p, num_c = scores.shape
    num_g = gts.shape[0]
    in_box = torch.zeros(num_p, num_g, dtype=torch.bool)
    in_ctr = torch.zeros(num_p, num_g, dtype=torch.bool)
    for g in range(num_g):
        x1, y1, x2, y2 = gts[g]
        cx, cy = (x1 + x2) / 2.0, (y1 + y2) / 2.0
        for p in range(num_p):
            x, y, s = priors[p, 0], priors[p, 1], priors[p, 2]
            in_box[p, g] = min(x - x1, y - y1, x2 - x, y2 - y) > 0
            r = radius * s
            in_ctr[p, g] = min(x - (cx - r), y - (cy - r), (cx + r) - x, (cy + r) - y) > 0
    valid = (in_box | in_ctr).any(1)
    vidx = valid.nonzero().squeeze(1).tolist()
    out = [-1] * num_p
    if not vidx:
        return out
    ious = pairwise_iou(dec[vidx], gts)
    cost = torch.empty(len(vidx), num_g)
    for i, p in enumerate(vidx):
        for g in range(num_g):
            y = F.one_hot(labels[g], num_c).float() * ious[i, g]
            c = (F.binary_cross_entropy(scores[p], y, reduction="none") * (y - scores[p]).abs() ** 2).sum()
            cost[i, g] = c + 3.0 * -torch.log(ious[i, g] + 1e-7) + (0.0 if (in_box[p, g] and in_ctr[p, g]) else 1e8)
    picks: dict[int, list[int]] = {}
    for g in range(num_g):
        col = sorted(ious[:, g].tolist(), reverse=True)[: min(topk, len(vidx))]
        k = max(1, int(torch.tensor(col).sum().item()))
        order = sorted(range(len(vidx)), key=lambda i: (cost[i, g].item(), i))[:k]
        for i in order:
            picks.setdefault(i, []).append(g)
    for i, gl in picks.items():
        out[vidx[i]] = gl[0] if len(gl) == 1 else int(cost[i].argmin())
    return out


@pytest.mark.parametrize("seed", range(6))
def test_matches_loop_reference(seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    xs, ys = torch.meshgrid(torch.arange(0, 96, 8.0), torch.arange(0, 80, 8.0), indexing="xy")
    p8 = torch.stack([xs.flatten(), ys.flatten(), torch.full((xs.numel(),), 8.0), torch.full((xs.numel(),), 8.0)], 1)
    xs, ys = torch.meshgrid(torch.arange(0, 96, 16.0), torch.arange(0, 80, 16.0), indexing="xy")
    p16 = torch.stack([xs.flatten(), ys.flatten(), torch.full((xs.numel(),), 16.0), torch.full((xs.numel(),), 16.0)], 1)
    priors = torch.cat([p8, p16])
    num_p, num_c, num_g = priors.shape[0], 5, 4
    centre = torch.rand(num_g, 2, generator=g) * torch.tensor([96.0, 80.0])
    half = torch.rand(num_g, 2, generator=g) * 25 + 3
    gts = torch.cat([centre - half, centre + half], 1)
    labels = torch.randint(0, num_c, (num_g,), generator=g)
    scores = torch.rand(num_p, num_c, generator=g) * 0.9 + 0.05
    # Predictions: jittered copies of a random GT, so IoUs are spread over [0, 1].
    src = gts[torch.randint(0, num_g, (num_p,), generator=g)]
    dec = src + torch.randn(num_p, 4, generator=g) * 6
    dec = torch.cat([torch.min(dec[:, :2], dec[:, 2:]), torch.max(dec[:, :2], dec[:, 2:])], 1)

    res = AlignedOTAAssigner().assign(scores, priors, dec, gts, labels)
    expected = _loop_reference(scores, priors, dec, gts, labels)
    assert res.gt_inds.tolist() == expected
    assert res.num_pos > 0
    pos = res.pos_mask
    torch.testing.assert_close(res.labels[pos], labels[res.gt_inds[pos]])
    full_iou = pairwise_iou(dec, gts)
    torch.testing.assert_close(res.ious[pos], full_iou[pos, res.gt_inds[pos]])
    assert math.isclose(res.ious[~pos].abs().sum().item(), 0.0)
