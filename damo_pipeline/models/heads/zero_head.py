"""ZeroHead: one conv per level for classes and one for DFL box distributions (GFL-style)."""
from __future__ import annotations

import math
from typing import Dict, List, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from ..losses.zero_head_loss import zero_head_loss
from .registry import HEADS


class Scale(nn.Module):
    """A learnable scalar multiplying the regression map (key ``scale``, shape ``[]``)."""

    def __init__(self, value: float = 1.0) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(value, dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale


class Integral(nn.Module):
    """Expected value of a distribution over bins 0..reg_max (buffer ``project``, in the state_dict)."""

    def __init__(self, reg_max: int) -> None:
        super().__init__()
        self.reg_max = reg_max
        self.register_buffer("project", torch.linspace(0, reg_max, reg_max + 1))

    def forward(self, probs: torch.Tensor) -> torch.Tensor:
        """``probs`` [..., reg_max + 1] (softmaxed) -> expected bin [...]."""
        return F.linear(probs, self.project.type_as(probs).unsqueeze(0)).squeeze(-1)


def anchor_points(feature_sizes: Sequence[Tuple[int, int]], strides: Sequence[int],
                  device: torch.device, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Priors [A, 4] = (x, y, stride, stride), x = j * s, y = i * s (cell corner), levels in order, row-major."""
    priors = []
    for (h, w), s in zip(feature_sizes, strides):
        ys, xs = torch.meshgrid(torch.arange(h, device=device, dtype=dtype) * s,
                                torch.arange(w, device=device, dtype=dtype) * s, indexing="ij")
        stride = torch.full((h * w,), float(s), device=device, dtype=dtype)
        priors.append(torch.stack([xs.reshape(-1), ys.reshape(-1), stride, stride], dim=1))
    return torch.cat(priors, dim=0)


def distance_to_boxes(points: torch.Tensor, distances: torch.Tensor) -> torch.Tensor:
    """(x, y) points [A, 2] and (l, t, r, b) distances [..., A, 4] -> xyxy boxes [..., A, 4] (no clipping)."""
    return torch.cat([points - distances[..., :2], points + distances[..., 2:]], dim=-1)


@HEADS.register("zero_head")
class ZeroHead(nn.Module):
    """ZeroHead with Distribution Focal Loss regression (``reg_max + 1`` bins per side).

    Args:
        num_classes: K, the number of sigmoid class outputs.
        in_channels: neck widths at each stride.
        strides: feature strides (8, 16, 32).
        reg_max: largest DFL bin (16 for T/S/M/L, 7 for Nano).
        last_kernel_size: kernel of the class/box convs (3, or 1 for Nano).
        legacy: pre-v0.3.0 checkpoints have K + 1 class channels; the extra one is dropped.
    """

    def __init__(self, num_classes: int, in_channels: Sequence[int], strides: Sequence[int] = (8, 16, 32),
                 reg_max: int = 16, last_kernel_size: int = 3, legacy: bool = False) -> None:
        super().__init__()
        if len(in_channels) != len(strides):
            raise ValueError(f"ZeroHead needs one input width per stride; got {in_channels} and {strides}.")
        self.num_classes = num_classes
        self.strides = tuple(strides)
        self.reg_max = reg_max
        self.legacy = legacy
        cls_out = num_classes + 1 if legacy else num_classes
        pad = last_kernel_size // 2
        self.integral = Integral(reg_max)
        self.gfl_cls = nn.ModuleList(nn.Conv2d(c, cls_out, last_kernel_size, padding=pad) for c in in_channels)
        self.gfl_reg = nn.ModuleList(nn.Conv2d(c, 4 * (reg_max + 1), last_kernel_size, padding=pad)
                                     for c in in_channels)
        self.scales = nn.ModuleList(Scale(1.0) for _ in strides)
        self.reset_parameters()

    def reset_parameters(self, prior_prob: float = 0.01) -> None:
        """Upstream init: N(0, 0.01) weights, class bias for a 1% prior, box bias 0, scales 1."""
        for conv in self.gfl_cls:
            nn.init.normal_(conv.weight, 0.0, 0.01)
            nn.init.constant_(conv.bias, -math.log((1 - prior_prob) / prior_prob))
        for conv in self.gfl_reg:
            nn.init.normal_(conv.weight, 0.0, 0.01)
            nn.init.zeros_(conv.bias)

    def predict_raw(self, features: Sequence[torch.Tensor]) -> Dict[str, torch.Tensor]:
        """Flattened per-anchor outputs of all levels (strides in order, row-major).

        Returns:
            dict with ``cls_probs`` [N, A, K] (sigmoid), ``reg_logits`` [N, A, 4, R+1] (Scale-multiplied,
            float32, sides l/t/r/b), ``boxes`` [N, A, 4] xyxy in input pixels, ``priors`` [A, 4].
        """
        if len(features) != len(self.strides):
            raise ValueError(f"ZeroHead expects {len(self.strides)} feature maps, got {len(features)}.")
        cls_list: List[torch.Tensor] = []
        reg_list: List[torch.Tensor] = []
        sizes = []
        bins = self.reg_max + 1
        for feat, cls_conv, reg_conv, scale in zip(features, self.gfl_cls, self.gfl_reg, self.scales):
            n, _, h, w = feat.shape
            sizes.append((h, w))
            cls = cls_conv(feat).sigmoid()
            reg = scale(reg_conv(feat)).float()
            cls_list.append(cls.permute(0, 2, 3, 1).reshape(n, h * w, -1))
            reg_list.append(reg.reshape(n, 4, bins, h, w).permute(0, 3, 4, 1, 2).reshape(n, h * w, 4, bins))
        cls_probs = torch.cat(cls_list, dim=1)[..., : self.num_classes]
        reg_logits = torch.cat(reg_list, dim=1)
        priors = anchor_points(sizes, self.strides, reg_logits.device, reg_logits.dtype)
        distances = self.integral(reg_logits.softmax(dim=-1)) * priors[:, 2:3]
        boxes = distance_to_boxes(priors[:, :2], distances)
        return {"cls_probs": cls_probs, "reg_logits": reg_logits, "boxes": boxes, "priors": priors}

    def forward(self, features: Sequence[torch.Tensor]) -> Tuple[torch.Tensor, torch.Tensor]:
        """Decoded ``(scores [N, A, K], boxes [N, A, 4])``, boxes xyxy in input pixels; no NMS."""
        out = self.predict_raw(features)
        return out["cls_probs"], out["boxes"]

    def loss(self, features: Sequence[torch.Tensor], targets: Sequence[Dict[str, torch.Tensor]]) -> Dict[str, torch.Tensor]:
        """Training losses (AlignedOTA assignment, QFL + GIoU + DFL) for per-image ``targets``.

        ``targets``: one dict per image with ``boxes`` FloatTensor[K, 4] (xyxy, input pixels) and
        ``labels`` LongTensor[K] (0-based class ids).
        """
        if self.legacy:
            raise ValueError("Training a legacy (K + 1 class channel) head is not supported; build with legacy=False.")
        out = self.predict_raw(features)
        return zero_head_loss(out["cls_probs"], out["reg_logits"], out["boxes"], out["priors"], list(targets),
                              self.num_classes, self.reg_max)
