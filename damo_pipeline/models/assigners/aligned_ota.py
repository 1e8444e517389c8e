"""AlignedOTA label assignment (DAMO-YOLO ZeroHead), per image.

The assigner follows ``training.md`` §7.1 and the arithmetic of the official
``AlignOTAAssigner`` (``damo/base_models/core/ota_assigner.py``):

1. *Valid* priors: the prior point lies strictly inside at least one GT box, or
   strictly inside at least one GT's centre region (GT centre ± ``center_radius``
   × the prior's stride).
2. For valid priors × GTs: plain IoU between the decoded prediction and the GT
   (union clamped at 1e-6); ``iou_cost = -log(IoU + 1e-7)``; ``cls_cost`` =
   sum over all classes of ``BCE(p, y) * |y - p|**2`` with the soft target
   ``y = onehot(gt label) * IoU``; ``cost = cls_weight * cls_cost +
   iou_weight * iou_cost + 1e8 * (not (in box and in centre region))``, all in
   float32 (so the 1e8 penalty quantises costs the same way as the official code).
3. Dynamic k per GT: ``max(1, int(sum of the top-min(topk, #valid) IoUs))``; each
   GT takes its k lowest-cost valid priors. A prior picked by several GTs keeps the
   GT with the smallest cost over *all* GTs (``argmin`` of its cost row, exactly as
   the official code does).

The implementation is vectorised over priors and GTs (no Python loop). The only
intentional deviation from the official code is tie-breaking when several priors
have exactly equal cost at the k-th place: here the lower prior index wins (a stable
sort), whereas the official ``torch.topk`` leaves ties unspecified.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..losses.iou import pairwise_iou

logger = logging.getLogger(__name__)

__all__ = ["AlignedOTAAssigner", "AssignResult"]

_INF_COST = 100000000.0  # penalty for priors outside "in box and in centre region"


@dataclass
class AssignResult:
    """Per-prior outcome of one image's assignment.

    Attributes:
        gt_inds: ``[A]`` long; index of the assigned GT (0-based), ``-1`` for negatives.
        labels: ``[A]`` long; class of the assigned GT, ``-1`` for negatives.
        ious: ``[A]`` float; IoU between the prior's decoded box and its assigned GT
            (the QFL quality target), ``0`` for negatives.
        num_gts: number of GT boxes in the image.
    """

    gt_inds: torch.Tensor
    labels: torch.Tensor
    ious: torch.Tensor
    num_gts: int

    @property
    def pos_mask(self) -> torch.Tensor:
        """``[A]`` bool mask of positive priors."""
        return self.gt_inds >= 0

    @property
    def num_pos(self) -> int:
        """Number of positive priors."""
        return int(self.pos_mask.sum().item())


class AlignedOTAAssigner:
    """AlignedOTA assigner (SimOTA variant with IoU-aware classification cost).

    Args:
        center_radius: half-size of the GT centre region, in units of the prior's stride.
        cls_weight: weight of the classification cost.
        iou_weight: weight of the IoU cost.
        topk: number of top IoUs summed to compute each GT's dynamic k.
    """

    def __init__(
        self,
        center_radius: float = 2.5,
        cls_weight: float = 1.0,
        iou_weight: float = 3.0,
        topk: int = 10,
    ) -> None:
        if center_radius <= 0:
            raise ValueError(f"center_radius must be > 0, got {center_radius}")
        if topk < 1:
            raise ValueError(f"topk must be >= 1, got {topk}")
        self.center_radius = float(center_radius)
        self.cls_weight = float(cls_weight)
        self.iou_weight = float(iou_weight)
        self.topk = int(topk)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(center_radius={self.center_radius}, cls_weight={self.cls_weight}, "
            f"iou_weight={self.iou_weight}, topk={self.topk})"
        )

    # ------------------------------------------------------------------ validation
    @staticmethod
    def _validate(
        pred_scores: torch.Tensor,
        priors: torch.Tensor,
        decoded_boxes: torch.Tensor,
        gt_boxes: torch.Tensor,
        gt_labels: torch.Tensor,
    ) -> None:
        for name, t in (
            ("pred_scores", pred_scores),
            ("priors", priors),
            ("decoded_boxes", decoded_boxes),
            ("gt_boxes", gt_boxes),
            ("gt_labels", gt_labels),
        ):
            if not isinstance(t, torch.Tensor):
                raise ValueError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if pred_scores.dim() != 2:
            raise ValueError(f"pred_scores must have shape [A, C], got {tuple(pred_scores.shape)}")
        num_priors, num_classes = pred_scores.shape
        if priors.shape != (num_priors, 4):
            raise ValueError(f"priors must have shape [{num_priors}, 4] (x, y, sx, sy), got {tuple(priors.shape)}")
        if decoded_boxes.shape != (num_priors, 4):
            raise ValueError(f"decoded_boxes must have shape [{num_priors}, 4], got {tuple(decoded_boxes.shape)}")
        if gt_boxes.dim() != 2 or gt_boxes.shape[1] != 4:
            raise ValueError(f"gt_boxes must have shape [G, 4] (xyxy), got {tuple(gt_boxes.shape)}")
        if gt_labels.shape != (gt_boxes.shape[0],):
            raise ValueError(
                f"gt_labels must have shape [{gt_boxes.shape[0]}] to match gt_boxes, got {tuple(gt_labels.shape)}"
            )
        if gt_labels.is_floating_point() or gt_labels.is_complex() or gt_labels.dtype == torch.bool:
            raise ValueError(f"gt_labels must be an integer tensor, got dtype {gt_labels.dtype}")
        if gt_labels.numel() > 0:
            lo, hi = int(gt_labels.min()), int(gt_labels.max())
            if lo < 0 or hi >= num_classes:
                raise ValueError(
                    f"gt_labels values must be in [0, {num_classes - 1}] (pred_scores has {num_classes} columns), "
                    f"got min {lo} max {hi}"
                )

    # ------------------------------------------------------------------ geometry
    def _in_box_and_center(self, priors: torch.Tensor, gt_boxes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Prior-vs-GT geometric masks.

        Args:
            priors: ``[A, 4]`` rows ``(x, y, stride_x, stride_y)``.
            gt_boxes: ``[G, 4]`` xyxy.

        Returns:
            ``valid`` ``[A]`` bool (in some box or in some centre region) and
            ``in_both`` ``[V, G]`` bool (in that box and in its centre region) for the
            ``V`` valid priors.
        """
        x = priors[:, 0:1]  # [A, 1]
        y = priors[:, 1:2]
        sx = priors[:, 2:3]
        sy = priors[:, 3:4]

        # Strictly inside the GT box: all four distances > 0.
        in_box = (
            torch.stack(
                [x - gt_boxes[:, 0], y - gt_boxes[:, 1], gt_boxes[:, 2] - x, gt_boxes[:, 3] - y], dim=1
            )
            .min(dim=1)
            .values
            > 0
        )  # [A, G]

        cx = (gt_boxes[:, 0] + gt_boxes[:, 2]) / 2.0
        cy = (gt_boxes[:, 1] + gt_boxes[:, 3]) / 2.0
        r = self.center_radius
        in_center = (
            torch.stack(
                [x - (cx - r * sx), y - (cy - r * sy), (cx + r * sx) - x, (cy + r * sy) - y], dim=1
            )
            .min(dim=1)
            .values
            > 0
        )  # [A, G]

        valid = in_box.any(dim=1) | in_center.any(dim=1)
        in_both = in_box[valid] & in_center[valid]
        return valid, in_both

    # ------------------------------------------------------------------ assignment
    @torch.no_grad()
    def assign(
        self,
        pred_scores: torch.Tensor,
        priors: torch.Tensor,
        decoded_boxes: torch.Tensor,
        gt_boxes: torch.Tensor,
        gt_labels: torch.Tensor,
    ) -> AssignResult:
        """Assign GTs to the priors of one image.

        All inputs are treated as constants (the method runs under ``no_grad``).

        Args:
            pred_scores: ``[A, C]`` predicted class probabilities (post-sigmoid).
            priors: ``[A, 4]`` rows ``(x, y, stride_x, stride_y)``; the point is the
                cell's top-left corner in input pixels.
            decoded_boxes: ``[A, 4]`` predicted boxes, xyxy input pixels.
            gt_boxes: ``[G, 4]`` GT boxes, xyxy input pixels (``G`` may be 0).
            gt_labels: ``[G]`` integer GT classes in ``0..C-1``.

        Returns:
            :class:`AssignResult` with per-prior ``gt_inds`` / ``labels`` (``-1`` for
            negatives) and ``ious`` (0 for negatives).

        Raises:
            ValueError: on inconsistent shapes or out-of-range labels.
        """
        self._validate(pred_scores, priors, decoded_boxes, gt_boxes, gt_labels)
        num_priors, num_classes = pred_scores.shape
        num_gts = gt_boxes.shape[0]
        device = pred_scores.device

        pred_scores = pred_scores.detach().float()
        priors = priors.detach().to(device=device, dtype=torch.float32)
        decoded_boxes = decoded_boxes.detach().to(device=device, dtype=torch.float32)
        gt_boxes = gt_boxes.detach().to(device=device, dtype=torch.float32)
        gt_labels = gt_labels.detach().to(device=device, dtype=torch.long)

        gt_inds = torch.full((num_priors,), -1, dtype=torch.long, device=device)
        labels = torch.full((num_priors,), -1, dtype=torch.long, device=device)
        ious = torch.zeros((num_priors,), dtype=torch.float32, device=device)
        if num_gts == 0 or num_priors == 0:
            return AssignResult(gt_inds, labels, ious, num_gts)

        valid, in_both = self._in_box_and_center(priors, gt_boxes)
        valid_idx = valid.nonzero(as_tuple=False).squeeze(1)  # [V]
        num_valid = valid_idx.numel()
        if num_valid == 0:
            return AssignResult(gt_inds, labels, ious, num_gts)

        valid_boxes = decoded_boxes[valid_idx]  # [V, 4]
        valid_scores = pred_scores[valid_idx]  # [V, C]

        pair_ious = pairwise_iou(valid_boxes, gt_boxes)  # [V, G]
        iou_cost = -torch.log(pair_ious + 1e-7)

        # Classification cost: QFL-style BCE on probabilities against the soft
        # target onehot(label) * IoU, summed over all classes -> [V, G].
        onehot = F.one_hot(gt_labels, num_classes).to(torch.float32)  # [G, C]
        soft_target = onehot[None, :, :] * pair_ious[:, :, None]  # [V, G, C]
        scores_vgc = valid_scores[:, None, :].expand(num_valid, num_gts, num_classes)
        cls_cost = (
            F.binary_cross_entropy(scores_vgc, soft_target, reduction="none")
            * (soft_target - scores_vgc).abs().pow(2.0)
        ).sum(dim=-1)
        del soft_target, scores_vgc

        cost = cls_cost * self.cls_weight + iou_cost * self.iou_weight + (~in_both).to(torch.float32) * _INF_COST

        # Dynamic k per GT from the top IoUs among valid priors.
        candidate_k = min(self.topk, num_valid)
        topk_ious = torch.topk(pair_ious, candidate_k, dim=0).values  # [k, G], descending
        dynamic_ks = torch.clamp(topk_ious.sum(0).int(), min=1)  # [G]

        # Each GT takes its k lowest-cost priors (stable: ties -> lower prior index).
        order = torch.sort(cost, dim=0, stable=True).indices  # [V, G]
        rank = torch.empty_like(order)
        rank.scatter_(0, order, torch.arange(num_valid, device=device)[:, None].expand(num_valid, num_gts))
        matching = rank < dynamic_ks[None, :]  # [V, G] bool

        # Priors taken by several GTs keep the GT of minimal cost (over all GTs).
        multi = matching.sum(dim=1) > 1
        if bool(multi.any()):
            best = cost[multi].argmin(dim=1)
            matching[multi] = F.one_hot(best, num_gts).bool()

        fg = matching.any(dim=1)  # [V]
        matched_gt = matching[fg].to(torch.uint8).argmax(dim=1)  # [P]
        pos_idx = valid_idx[fg]
        gt_inds[pos_idx] = matched_gt
        labels[pos_idx] = gt_labels[matched_gt]
        ious[pos_idx] = pair_ious[fg].gather(1, matched_gt[:, None]).squeeze(1)
        return AssignResult(gt_inds, labels, ious, num_gts)
