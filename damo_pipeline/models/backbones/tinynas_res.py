"""TinyNAS ResNet-style backbone (DAMO-YOLO T and S): Focus stem + residual stages + SPP."""
from __future__ import annotations

from typing import Any, Dict, List, Sequence

import torch
from torch import nn

from ..layers import ConvKXBNRELU, Focus, ResConvBlock, SPPBottleneck
from .registry import BACKBONES
from .structures import StructureSpec, block_type_of, load_structure


class ResStage(nn.Module):
    """``L`` ResConvBlocks (block 0 carries the stride); optional SPP right after block 0."""

    def __init__(self, entry: Dict[str, Any], act: str, reparam: bool, with_spp: bool) -> None:
        super().__init__()
        block_type = block_type_of(entry)
        blocks: List[nn.Module] = []
        for i in range(entry["L"]):
            blocks.append(ResConvBlock(entry["in"] if i == 0 else entry["out"], entry["out"], entry["btn"],
                                       entry["k"], entry["s"] if i == 0 else 1, act, reparam, block_type))
            if i == 0 and with_spp:
                blocks.append(SPPBottleneck(entry["out"], entry["out"]))
        self.block_list = nn.ModuleList(blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.block_list:
            x = block(x)
        return x


@BACKBONES.register("tinynas_res")
class TinyNASRes(nn.Module):
    """Keys ``block_list.0`` (stem) and ``block_list.{1..5}.block_list.{j}`` as upstream.

    Args:
        structure: shipped structure name or the list itself (stem + stages).
        out_indices: indices into ``block_list`` whose outputs are returned (strides 8/16/32).
        with_spp: insert SPPBottleneck after block 0 of the last stage.
        use_focus: Focus stem (stride 2 by slicing) instead of a strided conv.
        act: activation of the stem and residual blocks (SPP is always SiLU).
        reparam: RepConv as each block's second conv.
    """

    def __init__(self, structure: StructureSpec, out_indices: Sequence[int] = (2, 4, 5), with_spp: bool = True,
                 use_focus: bool = True, act: str = "relu", reparam: bool = True) -> None:
        super().__init__()
        entries = load_structure(structure)
        self.out_indices = tuple(out_indices)
        stem = entries[0]
        modules: List[nn.Module] = [
            Focus(3, stem["out"], stem["k"], act=act) if use_focus
            else ConvKXBNRELU(3, stem["out"], stem["k"], 2, act=act)
        ]
        for idx, entry in enumerate(entries[1:], start=1):
            modules.append(ResStage(entry, act, reparam, with_spp and idx == len(entries) - 1))
        self.block_list = nn.ModuleList(modules)
        widths = [e["out"] for e in entries]
        self.out_channels = [widths[i] for i in self.out_indices]

    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:
        outputs = []
        for idx, block in enumerate(self.block_list):
            x = block(x)
            if idx in self.out_indices:
                outputs.append(x)
        return outputs
