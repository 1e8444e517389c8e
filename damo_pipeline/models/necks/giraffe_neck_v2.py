"""Efficient RepGFPN (GiraffeNeckV2): CSP + RepConv fusion nodes over three scales."""
from __future__ import annotations

from typing import List, Sequence

import torch
from torch import nn

from ..layers import ConvBNAct, DepthwiseConv, MobileV3Block, RepConv
from .registry import NECKS


class BasicBlock3x3Reverse(nn.Module):
    """``x + conv1(conv2(x))``: RepConv (C -> h) first, then a 3x3 ConvBNAct (h -> C).

    Upstream names it "Reverse" because ``conv2`` runs before ``conv1``; keep the names, they are
    state_dict keys. The depthwise (Nano) variant is a single neck MobileV3Block named ``conv``.
    """

    def __init__(self, channels: int, hidden_ratio: float, act: str, depthwise: bool = False) -> None:
        super().__init__()
        self.depthwise = depthwise
        if depthwise:
            self.conv = MobileV3Block(channels, channels, 1, expansion=3.0, act=act, with_se_slot=False)
        else:
            hidden = int(channels * hidden_ratio)
            self.conv1 = ConvBNAct(hidden, channels, 3, 1, act=act)
            self.conv2 = RepConv(channels, hidden, 3, 1, act=act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.depthwise:
            return self.conv(x)
        return x + self.conv1(self.conv2(x))


class CSPStage(nn.Module):
    """RepGFPN fusion node: two 1x1 branches, ``n`` reverse blocks on one, ELAN-style concat, 1x1 out.

    Output channels of every block are kept: ``conv3`` sees ``c1 + n * c2`` channels.
    """

    def __init__(self, in_channels: int, hidden_ratio: float, out_channels: int, num_blocks: int, act: str,
                 depthwise: bool = False) -> None:
        super().__init__()
        c1 = out_channels // 2
        c2 = out_channels - c1
        self.conv1 = ConvBNAct(in_channels, c1, 1, 1, act=act)
        self.conv2 = ConvBNAct(in_channels, c2, 1, 1, act=act)
        self.convs = nn.ModuleList(BasicBlock3x3Reverse(c2, hidden_ratio, act, depthwise) for _ in range(num_blocks))
        self.conv3 = ConvBNAct(c1 + num_blocks * c2, out_channels, 1, 1, act=act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs = [self.conv1(x)]
        y = self.conv2(x)
        for block in self.convs:
            y = block(y)
            outputs.append(y)
        return self.conv3(torch.cat(outputs, dim=1))


@NECKS.register("giraffe_neck_v2")
class GiraffeNeckV2(nn.Module):
    """Efficient RepGFPN over backbone features at strides 8/16/32; returns (x5, x7, x6).

    Args:
        in_channels: backbone widths at strides 8, 16, 32.
        out_channels: neck output widths at strides 8, 16, 32.
        depth: blocks per fusion node = ``round(3 * depth)`` (Python rounding: 1.5 -> 4).
        hidden_ratio: RepConv width ratio inside each reverse block.
        act: activation everywhere in the neck.
        depthwise: Nano variant (DepthwiseConv down-sampling, MobileV3Block fusion blocks).
    """

    def __init__(self, in_channels: Sequence[int], out_channels: Sequence[int], depth: float = 1.0,
                 hidden_ratio: float = 1.0, act: str = "relu", depthwise: bool = False) -> None:
        super().__init__()
        if len(in_channels) != 3 or len(out_channels) != 3:
            raise ValueError(f"GiraffeNeckV2 needs 3 input and 3 output widths; got {in_channels}, {out_channels}.")
        cin0, cin1, cin2 = in_channels
        cout0, cout1, cout2 = out_channels
        n = round(3 * depth)
        self.in_channels = list(in_channels)
        self.out_channels = list(out_channels)

        def down(c: int) -> nn.Module:
            return DepthwiseConv(c, c, 3, 2, act=act) if depthwise else ConvBNAct(c, c, 3, 2, act=act)

        def node(cin: int, cout: int) -> CSPStage:
            return CSPStage(cin, hidden_ratio, cout, n, act, depthwise)

        self.upsample = nn.Upsample(scale_factor=2, mode="nearest")
        self.bu_conv13 = down(cin1)
        self.merge_3 = node(cin1 + cin2, cin2)
        self.bu_conv24 = down(cin0)
        self.merge_4 = node(cin0 + cin1 + cin2, cin1)
        self.merge_5 = node(cin1 + cin0, cout0)
        self.bu_conv57 = down(cout0)
        self.merge_7 = node(cout0 + cin1, cout1)
        self.bu_conv46 = down(cin1)
        self.bu_conv76 = down(cout1)
        self.merge_6 = node(cin1 + cout1 + cin2, cout2)

    def forward(self, features: Sequence[torch.Tensor]) -> List[torch.Tensor]:
        x2, x1, x0 = features  # strides 8, 16, 32
        x3 = self.merge_3(torch.cat([x0, self.bu_conv13(x1)], 1))
        x4 = self.merge_4(torch.cat([x1, self.bu_conv24(x2), self.upsample(x3)], 1))
        x5 = self.merge_5(torch.cat([x2, self.upsample(x4)], 1))
        x7 = self.merge_7(torch.cat([x4, self.bu_conv57(x5)], 1))
        x6 = self.merge_6(torch.cat([x3, self.bu_conv46(x4), self.bu_conv76(x7)], 1))
        return [x5, x7, x6]
