"""Convolution + BatchNorm (+ activation) blocks, under the official state_dict names.

Two families exist upstream with different attribute names, and checkpoints depend on them:
``ConvBNAct`` (``conv``, ``bn``) in the neck, Focus and SPP, and ``ConvKXBN`` (``conv1``, ``bn1``)
in the backbones. Every block can fold its BatchNorm into the convolution with ``fuse()``.
"""
from __future__ import annotations

from typing import Sequence, Tuple

import torch
from torch import nn

from .activations import get_activation
from .fusion import fuse_conv_bn


class FusableMixin:
    """Fold each ``(conv, bn)`` attribute pair named in ``_conv_bn_pairs`` (deploy form)."""

    _conv_bn_pairs: Sequence[Tuple[str, str]] = ()

    def fuse(self) -> None:
        """Replace each conv by a biased conv with the BN folded in, and the BN by Identity."""
        for conv_name, bn_name in self._conv_bn_pairs:
            bn = getattr(self, bn_name)
            if isinstance(bn, nn.BatchNorm2d):
                setattr(self, conv_name, fuse_conv_bn(getattr(self, conv_name), bn))
                setattr(self, bn_name, nn.Identity())


class ConvBNAct(FusableMixin, nn.Module):
    """Conv2d (no bias, 'same' padding) -> BatchNorm2d -> activation. Keys ``conv.*``, ``bn.*``."""

    _conv_bn_pairs = (("conv", "bn"),)

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 groups: int = 1, act: str = "silu") -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, (kernel_size - 1) // 2,
                              groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)
        self.act = get_activation(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class ConvKXBN(FusableMixin, nn.Module):
    """Backbone Conv2d (no bias) -> BatchNorm2d, no activation. Keys ``conv1.*``, ``bn1.*``."""

    _conv_bn_pairs = (("conv1", "bn1"),)

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size, stride, (kernel_size - 1) // 2, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn1(self.conv1(x))


class ConvKXBNRELU(nn.Module):
    """ConvKXBN followed by an activation (ReLU unless named). Keys ``conv.conv1.*``, ``conv.bn1.*``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 act: str = "relu") -> None:
        super().__init__()
        self.conv = ConvKXBN(in_channels, out_channels, kernel_size, stride)
        self.act = get_activation(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv(x))


class Focus(nn.Module):
    """Space-to-depth stem (stride 2 by slicing), then a ConvBNAct on the 4x channels.

    Slices are concatenated in the official order: (even row, even col), (odd row, even col),
    (even row, odd col), (odd row, odd col).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 1, act: str = "silu") -> None:
        super().__init__()
        self.conv = ConvBNAct(in_channels * 4, out_channels, kernel_size, 1, act=act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.cat(
            (x[..., ::2, ::2], x[..., 1::2, ::2], x[..., ::2, 1::2], x[..., 1::2, 1::2]), dim=1)
        return self.conv(x)


class SPPBottleneck(nn.Module):
    """Spatial pyramid pooling (max-pool 5/9/13) between two 1x1 ConvBNActs; always SiLU upstream."""

    def __init__(self, in_channels: int, out_channels: int, kernel_sizes: Sequence[int] = (5, 9, 13),
                 act: str = "silu") -> None:
        super().__init__()
        hidden = in_channels // 2
        self.conv1 = ConvBNAct(in_channels, hidden, 1, 1, act=act)
        self.m = nn.ModuleList(nn.MaxPool2d(k, stride=1, padding=k // 2) for k in kernel_sizes)
        self.conv2 = ConvBNAct(hidden * (len(kernel_sizes) + 1), out_channels, 1, 1, act=act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)
        x = torch.cat([x] + [pool(x) for pool in self.m], dim=1)
        return self.conv2(x)
