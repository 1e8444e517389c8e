"""ResConvBlock: the bottleneck residual block of the TinyNAS ResNet- and CSP-style backbones."""
from __future__ import annotations

import torch
from torch import nn

from .activations import get_activation
from .conv import ConvKXBN
from .repconv import RepConv


class ResConvBlock(nn.Module):
    """conv1 (1x1 for k1kx, kxk for kxkx) -> act -> conv2 (RepConv, stride s) [+ residual] -> act.

    Stride-2 blocks have no residual; a ``residual_proj`` 1x1 ConvKXBN appears only when the
    channel count changes at stride 1 (no official model has one).
    """

    def __init__(self, in_channels: int, out_channels: int, bottleneck: int, kernel_size: int, stride: int,
                 act: str = "relu", reparam: bool = True, block_type: str = "k1kx") -> None:
        super().__init__()
        if block_type not in ("k1kx", "kxkx"):
            raise ValueError(f"Unknown ResConvBlock type {block_type!r}; choose 'k1kx' or 'kxkx'.")
        self.stride = stride
        self.conv1 = ConvKXBN(in_channels, bottleneck, kernel_size if block_type == "kxkx" else 1, 1)
        if reparam:
            self.conv2 = RepConv(bottleneck, out_channels, kernel_size, stride, act="identity")
        else:
            self.conv2 = ConvKXBN(bottleneck, out_channels, kernel_size, stride)
        self.act = get_activation(act)
        if stride != 2 and in_channels != out_channels:
            self.residual_proj = ConvKXBN(in_channels, out_channels, 1, 1)
        else:
            self.residual_proj = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv2(self.act(self.conv1(x)))
        if self.stride != 2:
            out = out + (self.residual_proj(x) if self.residual_proj is not None else x)
        return self.act(out)
