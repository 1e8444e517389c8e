"""TinyNAS CSP-style backbone (DAMO-YOLO M and L): Focus stem + CSP wrappers around residual stems."""
from __future__ import annotations

from typing import Any, Dict, List, Sequence

import torch
from torch import nn

from ..layers import ConvKXBNRELU, Focus, ResConvBlock, SPPBottleneck
from .registry import BACKBONES
from .structures import StructureSpec, block_type_of, load_structure


def group_entries(entries: Sequence[Dict[str, Any]]) -> List[List[Dict[str, Any]]]:
    """Group stage entries into CSP wrappers: each stride-2 entry opens a wrapper, stride-1 ones join it.

    For the official structures this gives [e1], [e2], [e3, e4], [e5].
    """
    groups: List[List[Dict[str, Any]]] = []
    for entry in entries:
        if entry["s"] == 2 or not groups:
            groups.append([entry])
        else:
            groups[-1].append(entry)
    return groups


class CSPWrapper(nn.Module):
    """A CSP wrapper: strided downsampler [+ SPP], then main (residual blocks) and shortcut paths.

    The wrapper convs use ReLU (upstream never overrides that default); inner blocks use ``act``.
    Registration order matches the official state_dict: convstem, downsampler, spp, conv_start,
    conv_shortcut, conv_fuse.
    """

    def __init__(self, group: Sequence[Dict[str, Any]], act: str, reparam: bool, with_spp: bool) -> None:
        super().__init__()
        first, last = group[0], group[-1]
        hidden = first["out"] // 2
        blocks: List[nn.Module] = []
        for entry in group:
            count = entry["L"] - 1 if entry["s"] == 2 else entry["L"]
            for i in range(count):
                width_in = entry["in"] // 2 if (i == 0 and entry["s"] != 2) else entry["out"] // 2
                blocks.append(ResConvBlock(width_in, entry["out"] // 2, entry["btn"], entry["k"], 1, act, reparam,
                                           block_type_of(entry)))
        self.convstem = nn.ModuleList(blocks)
        self.downsampler = ConvKXBNRELU(first["in"], 2 * hidden, 3, 2)
        self.spp = SPPBottleneck(2 * hidden, 2 * hidden) if with_spp else None
        self.has_csp = len(blocks) > 0
        if self.has_csp:
            self.conv_start = ConvKXBNRELU(2 * hidden, hidden, 1, 1)
            self.conv_shortcut = ConvKXBNRELU(2 * hidden, last["out"] // 2, 1, 1)
            # the main path ends at the last entry's half width, concatenated with the shortcut's
            self.conv_fuse = ConvKXBNRELU(2 * (last["out"] // 2), last["out"], 1, 1)
        self.out_channels = last["out"] if self.has_csp else 2 * hidden

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.downsampler(x)
        if self.spp is not None:
            x = self.spp(x)
        if not self.has_csp:
            return x
        shortcut = self.conv_shortcut(x)
        x = self.conv_start(x)
        for block in self.convstem:
            x = block(x)
        return self.conv_fuse(torch.cat([x, shortcut], dim=1))


@BACKBONES.register("tinynas_csp")
class TinyNASCSP(nn.Module):
    """Keys ``csp_stage.0`` (Focus) and ``csp_stage.{1..}`` (wrappers); out_indices index the wrappers."""

    def __init__(self, structure: StructureSpec, out_indices: Sequence[int] = (2, 3, 4), with_spp: bool = True,
                 use_focus: bool = True, act: str = "silu", reparam: bool = True) -> None:
        super().__init__()
        entries = load_structure(structure)
        self.out_indices = tuple(out_indices)
        stem = entries[0]
        stages: List[nn.Module] = [
            Focus(3, stem["out"], stem["k"], act=act) if use_focus
            else ConvKXBNRELU(3, stem["out"], stem["k"], 2, act=act)
        ]
        groups = group_entries(entries[1:])
        for i, group in enumerate(groups):
            stages.append(CSPWrapper(group, act, reparam, with_spp and i == len(groups) - 1))
        self.csp_stage = nn.ModuleList(stages)
        widths = [stem["out"]] + [s.out_channels for s in stages[1:]]
        if max(self.out_indices) >= len(widths):
            raise ValueError(f"out_indices {self.out_indices} out of range for {len(widths)} CSP stages.")
        self.out_channels = [widths[i] for i in self.out_indices]

    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:
        outputs = []
        for idx, stage in enumerate(self.csp_stage):
            x = stage(x)
            if idx in self.out_indices:
                outputs.append(x)
        return outputs
