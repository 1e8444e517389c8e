"""Depthwise blocks of the Nano models: MobileNetV3-style inverted residuals and DepthwiseConv."""
from __future__ import annotations

import math

import torch
from torch import nn

from .activations import get_activation
from .conv import FusableMixin
from .fusion import fuse_conv_bn


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round ``value`` to a multiple of ``divisor`` (at least ``divisor``), never more than 10% down."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


class MobileV3Block(nn.Module):
    """1x1 expand -> 5x5 depthwise -> 1x1 project, each with BN; residual when shapes allow.

    Two upstream variants differ only in state_dict indices: the backbone one keeps an
    Identity (SE) slot at index 5 (``with_se_slot=True``: keys 0,1,3,4,7,8), the neck one does
    not (keys 0,1,3,4,6,7). The expansion ratio is an argument (backbone: 3.5 + 0.5 * (stage - 1),
    neck: 3.0).
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, expansion: float = 3.0,
                 act: str = "silu", with_se_slot: bool = False, kernel_size: int = 5) -> None:
        super().__init__()
        mid = make_divisible(math.ceil(out_channels * expansion))
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, mid, 1, 1, 0, bias=False),
            nn.BatchNorm2d(mid),
            get_activation(act),
            nn.Conv2d(mid, mid, kernel_size, stride, kernel_size // 2, groups=mid, bias=False),
            nn.BatchNorm2d(mid),
        ]
        if with_se_slot:
            layers.append(nn.Identity())
        layers += [get_activation(act), nn.Conv2d(mid, out_channels, 1, 1, 0, bias=False), nn.BatchNorm2d(out_channels)]
        self.conv = nn.Sequential(*layers)
        self.use_residual = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(x)
        return x + out if self.use_residual else out

    def fuse(self) -> None:
        """Fold each BatchNorm into the convolution before it (deploy form)."""
        layers = list(self.conv)
        for i in range(len(layers) - 1):
            if isinstance(layers[i], nn.Conv2d) and isinstance(layers[i + 1], nn.BatchNorm2d):
                layers[i], layers[i + 1] = fuse_conv_bn(layers[i], layers[i + 1]), nn.Identity()
        for i, layer in enumerate(layers):
            self.conv[i] = layer


class DepthwiseConv(FusableMixin, nn.Module):
    """Depthwise kxk (stride s) -> BN -> act -> pointwise 1x1 -> BN -> act (Nano neck down-sampling)."""

    _conv_bn_pairs = (("depthwise", "dwnorm"), ("pointwise", "pwnorm"))

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 2,
                 act: str = "silu") -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(in_channels, in_channels, kernel_size, stride, (kernel_size - 1) // 2,
                                   groups=in_channels, bias=False)
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1, 1, 0, bias=False)
        self.dwnorm = nn.BatchNorm2d(in_channels)
        self.pwnorm = nn.BatchNorm2d(out_channels)
        self.act = get_activation(act)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Upstream init: Kaiming-normal (fan_out, ReLU gain) convs, BN weight 1 and bias 0."""
        for conv in (self.depthwise, self.pointwise):
            nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
        for bn in (self.dwnorm, self.pwnorm):
            nn.init.ones_(bn.weight)
            nn.init.zeros_(bn.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.dwnorm(self.depthwise(x)))
        return self.act(self.pwnorm(self.pointwise(x)))
