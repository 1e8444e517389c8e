"""Post-processing that ends an exported graph in ONNX NonMaxSuppression, with a fixed output layout.

Layout per image (K = max_detections): ``num_dets`` int64 [N, 1], ``det_boxes`` float [N, K, 4] xyxy in
input pixels, ``det_scores`` float [N, K], ``det_classes`` int64 [N, K]; rows past ``num_dets`` are
zero (classes -1). Same semantics as the official NMS: a box is kept once per class whose score is
strictly above the threshold, class-aware suppression when IoU > the IoU threshold, the K best kept.
"""
from __future__ import annotations

from typing import Tuple

import torch
from torch import nn

from ..ops.torch_nms import batched_nms


class _NonMaxSuppression(torch.autograd.Function):
    """Eager: our vectorised NMS. Exported: the ONNX ``NonMaxSuppression`` operator."""

    @staticmethod
    def forward(ctx, boxes: torch.Tensor, scores: torch.Tensor, max_per_class: torch.Tensor,
                iou_threshold: torch.Tensor, score_threshold: torch.Tensor) -> torch.Tensor:
        # boxes [N, A, 4], scores [N, C, A] -> selected [M, 3] (batch, class, box)
        n, c, a = scores.shape
        if torch.onnx.is_in_onnx_export():
            # Only the shape/dtype matter while the graph is traced (the operator replaces this); tracing
            # our data-dependent NMS ops would be recorded in vain and breaks the exporter's passes.
            return torch.zeros((5, 3), dtype=torch.int64)  # several rows: a single row gets squeezed in tracing
        b_idx, c_idx, a_idx = torch.nonzero(scores > score_threshold, as_tuple=True)
        flat_boxes = boxes[b_idx, a_idx]
        flat_scores = scores[b_idx, c_idx, a_idx]
        keep = batched_nms(flat_boxes, flat_scores, b_idx * c + c_idx, float(iou_threshold))
        return torch.stack([b_idx[keep], c_idx[keep], a_idx[keep]], dim=1)

    @staticmethod
    def symbolic(g, boxes, scores, max_per_class, iou_threshold, score_threshold):
        return g.op("NonMaxSuppression", boxes, scores, max_per_class, iou_threshold, score_threshold,
                    center_point_box_i=0)


class NMSPostprocess(nn.Module):
    """Turn ``(scores [N, A, C], boxes [N, A, 4])`` into the fixed per-image layout of this module."""

    def __init__(self, score_threshold: float, iou_threshold: float, max_detections: int) -> None:
        super().__init__()
        self.score_threshold = float(score_threshold)
        self.iou_threshold = float(iou_threshold)
        self.max_detections = int(max_detections)

    def forward(self, scores: torch.Tensor, boxes: torch.Tensor
                ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        n, a, c = scores.shape
        scores_t = scores.transpose(1, 2).contiguous()  # [N, C, A]
        selected = _NonMaxSuppression.apply(
            boxes.float(), scores_t.float(), torch.tensor([a], dtype=torch.int64),
            torch.tensor([self.iou_threshold], dtype=torch.float32),
            torch.tensor([self.score_threshold], dtype=torch.float32))
        b_idx, c_idx, a_idx = selected[:, 0], selected[:, 1], selected[:, 2]
        kept = scores_t.new_zeros((n, c * a))
        kept[b_idx, c_idx * a + a_idx] = scores_t[b_idx, c_idx, a_idx]
        k = min(self.max_detections, c * a)
        top_scores, top_index = kept.topk(k, dim=1)
        valid = top_scores > 0
        anchor = top_index % a
        det_boxes = torch.gather(boxes, 1, anchor.unsqueeze(-1).expand(n, k, 4)) * valid.unsqueeze(-1)
        det_classes = torch.where(valid, top_index // a, torch.full_like(top_index, -1))
        num_dets = valid.sum(dim=1, keepdim=True)
        return num_dets, det_boxes, top_scores, det_classes
