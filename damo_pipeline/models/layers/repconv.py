"""RepConv: a 3x3 and a 1x1 conv-BN branch in training, one 3x3 conv with bias when deployed."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .activations import get_activation
from .fusion import fold_bn


def _conv_bn(in_channels: int, out_channels: int, kernel_size: int, stride: int, padding: int) -> nn.Sequential:
    branch = nn.Sequential()
    branch.add_module("conv", nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, bias=False))
    branch.add_module("bn", nn.BatchNorm2d(out_channels))
    return branch


class RepConv(nn.Module):
    """``act(BN(conv3x3(x)) + BN(conv1x1(x)))``; no identity branch (as upstream).

    Training form keys: ``rbr_dense.{conv,bn}.*``, ``rbr_1x1.{conv,bn}.*``.
    After :meth:`fuse`: ``rbr_reparam.{weight,bias}``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1,
                 act: str = "relu") -> None:
        super().__init__()
        if kernel_size != 3:
            raise ValueError(f"RepConv supports kernel_size=3 only, got {kernel_size}.")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.stride = stride
        self.act = get_activation(act)
        self.rbr_dense = _conv_bn(in_channels, out_channels, 3, stride, 1)
        self.rbr_1x1 = _conv_bn(in_channels, out_channels, 1, stride, 0)

    @property
    def is_fused(self) -> bool:
        return hasattr(self, "rbr_reparam")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.is_fused:
            return self.act(self.rbr_reparam(x))
        return self.act(self.rbr_dense(x) + self.rbr_1x1(x))

    def fused_kernel_and_bias(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The single 3x3 kernel and bias equivalent to both branches (eval-mode BN)."""
        w3, b3 = fold_bn(self.rbr_dense.conv.weight, None, self.rbr_dense.bn)
        w1, b1 = fold_bn(self.rbr_1x1.conv.weight, None, self.rbr_1x1.bn)
        return w3 + F.pad(w1, [1, 1, 1, 1]), b3 + b1

    def fuse(self) -> None:
        """Switch to the deploy form in place (idempotent)."""
        if self.is_fused:
            return
        weight, bias = self.fused_kernel_and_bias()
        conv = nn.Conv2d(self.in_channels, self.out_channels, 3, self.stride, 1, bias=True).to(
            device=weight.device, dtype=weight.dtype)
        with torch.no_grad():
            conv.weight.copy_(weight)
            conv.bias.copy_(bias)
        self.rbr_reparam = conv
        del self.rbr_dense
        del self.rbr_1x1
