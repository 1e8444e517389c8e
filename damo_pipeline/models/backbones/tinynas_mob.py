"""TinyNAS mobile backbone (DAMO-YOLO Ns, Nm, Nl): strided stem + MobileNetV3-style stages + SPP."""
from __future__ import annotations

from typing import Any, Dict, List, Sequence

import torch
from torch import nn

from ..layers import ConvKXBNRELU, Focus, MobileV3Block, SPPBottleneck
from .registry import BACKBONES
from .structures import StructureSpec, load_structure


def stage_expansion(stage_index: int) -> float:
    """Upstream expansion ratio of the inverted residuals in stage ``stage_index`` (1-based): 3.5 .. 5.5."""
    return 3.5 + (stage_index - 1) * 0.5


class MobStage(nn.Module):
    """``L`` MobileV3Blocks (block 0 carries the stride); optional SPP right after block 0."""

    def __init__(self, entry: Dict[str, Any], stage_index: int, act: str, with_spp: bool) -> None:
        super().__init__()
        blocks: List[nn.Module] = []
        for i in range(entry["L"]):
            blocks.append(MobileV3Block(entry["in"] if i == 0 else entry["out"], entry["out"],
                                        entry["s"] if i == 0 else 1, stage_expansion(stage_index), act,
                                        with_se_slot=True))
            if i == 0 and with_spp:
                blocks.append(SPPBottleneck(entry["out"], entry["out"]))
        self.block_list = nn.ModuleList(blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.block_list:
            x = block(x)
        return x


@BACKBONES.register("tinynas_mob")
class TinyNASMob(nn.Module):
    """Keys ``block_list.0`` (stem) and ``block_list.{1..5}.block_list.{j}.conv.{0,1,3,4,7,8}``.

    The stem is a stride-2 ConvKXBNRELU whatever the structure's ``s`` says (as upstream); the
    structure's ``k`` and ``btn`` are ignored by the blocks (depthwise kernel 5).
    """

    def __init__(self, structure: StructureSpec, out_indices: Sequence[int] = (2, 4, 5), with_spp: bool = True,
                 use_focus: bool = False, act: str = "silu") -> None:
        super().__init__()
        entries = load_structure(structure)
        self.out_indices = tuple(out_indices)
        stem = entries[0]
        modules: List[nn.Module] = [
            Focus(3, stem["out"], stem["k"], act=act) if use_focus
            else ConvKXBNRELU(3, stem["out"], 3, 2, act=act)
        ]
        for idx, entry in enumerate(entries[1:], start=1):
            modules.append(MobStage(entry, idx, act, with_spp and idx == len(entries) - 1))
        self.block_list = nn.ModuleList(modules)
        widths = [e["out"] for e in entries]
        self.out_channels = [widths[i] for i in self.out_indices]
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Upstream init: conv weights N(0, 1/fan_in_per_group), BN weight 1, bias 1e-4, mean 0."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, 0.0, 1.0 / m.weight.shape[1])
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.constant_(m.bias, 1e-4)
                nn.init.zeros_(m.running_mean)

    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:
        outputs = []
        for idx, block in enumerate(self.block_list):
            x = block(x)
            if idx in self.out_indices:
                outputs.append(x)
        return outputs
