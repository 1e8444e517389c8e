"""Folding BatchNorm into the convolution before it (deploy-time re-parameterisation)."""
from __future__ import annotations

from typing import Tuple

import torch
from torch import nn


def fold_bn(weight: torch.Tensor, bias: torch.Tensor | None, bn: nn.BatchNorm2d) -> Tuple[torch.Tensor, torch.Tensor]:
    """Return ``(W', b')`` such that ``conv(x, W', b') == bn(conv(x, W, b))`` in eval mode.

    Per output channel: ``t = gamma / sqrt(var + eps)``, ``W' = W * t``,
    ``b' = beta + (b - mean) * t`` (``b`` is 0 for bias-free convolutions).
    """
    std = (bn.running_var + bn.eps).sqrt()
    gamma = bn.weight if bn.affine else torch.ones_like(std)
    beta = bn.bias if bn.affine else torch.zeros_like(std)
    t = gamma / std
    conv_bias = bias if bias is not None else torch.zeros_like(bn.running_mean)
    return weight * t.reshape(-1, 1, 1, 1), beta + (conv_bias - bn.running_mean) * t


def fuse_conv_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """Return a new Conv2d with bias that computes ``bn(conv(x))`` (eval mode)."""
    fused = nn.Conv2d(
        conv.in_channels,
        conv.out_channels,
        conv.kernel_size,
        stride=conv.stride,
        padding=conv.padding,
        dilation=conv.dilation,
        groups=conv.groups,
        bias=True,
    ).to(device=conv.weight.device, dtype=conv.weight.dtype)
    with torch.no_grad():
        weight, bias = fold_bn(conv.weight, conv.bias, bn)
        fused.weight.copy_(weight)
        fused.bias.copy_(bias)
    return fused
