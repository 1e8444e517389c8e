"""Training losses of the DAMO-YOLO heads (QFL, DFL, GIoU and the ZeroHead loss)."""

from .gfocal import distribution_focal_loss, giou_loss, quality_focal_loss
from .iou import aligned_giou, pairwise_iou
from .zero_head_loss import bbox2distance, build_zero_head_targets, zero_head_loss

__all__ = [
    "aligned_giou",
    "bbox2distance",
    "build_zero_head_targets",
    "distribution_focal_loss",
    "giou_loss",
    "pairwise_iou",
    "quality_focal_loss",
    "zero_head_loss",
]
