"""Analytic cost of a structure: layers, FLOPs and parameters, without running a network.

Two conventions, kept apart on purpose:

* :func:`search_time_cost` — TinyNAS's own count for the *search-time* network (320x320x12 input, plain
  residual units with avg-pool shortcuts, BN counted, thop style; ``spec/nas.md`` §6.2). It reproduces the
  official numbers exactly and exists for conformance with the published searches.
* :class:`CostModel` — the *deployed* detector built by :func:`damo_pipeline.models.build_model` at the
  template's input size, in :func:`damo_pipeline.models.profile`'s convention (GFLOPs = 2 x multiply-
  accumulates of convolutions and matmuls; parameters after RepConv merging, BatchNorm kept). The backbone
  part is analytic (:func:`.ops.backbone_ops`); neck and head are traced once per distinct triple of backbone
  output widths on the meta device and memoised. This is what the search's FLOPs and params budgets use.
"""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Dict, List, Optional, Sequence, Tuple

from .ops import Op, TracedPart, backbone_ops, backbone_out_channels, trace_neck_head
from .space import STEM, Structure, count_layers
from .template import DetectorTemplate

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SearchTimeCost:
    """TinyNAS's cost of the search-time network: thop-style FLOPs (MACs + BN + ReLU + pool + add)."""

    flops: int
    params: int
    layers: int


def search_time_cost(structure: Structure, resolution: int = 320, stem_in_channels: int = 12) -> SearchTimeCost:
    """FLOPs, params and layers as TinyNAS counts them for the DAMO-YOLO searches.

    Per conv at input side H, stride s: FLOPs ``(H/s)^2 (C_in C_out k^2 + 2 C_out)`` (the ``2 C_out`` is BN),
    params ``C_in C_out k^2 + 2 C_out``; plus the stem's ReLU, each unit's two ReLUs, the 2x2 avg-pool of a
    stride-2 shortcut and, when ``in != out``, the 1x1 projection (at the output side) and the add.

    Args:
        structure: the candidate.
        resolution: input side of the stem (320: the Focus output of a 640 image).
        stem_in_channels: stem input width (12 in the official searches).
    """
    flops = params = 0
    h = resolution

    def conv(c_in: int, c_out: int, k: int, side: int) -> Tuple[int, int]:
        return side * side * (c_in * c_out * k * k + 2 * c_out), c_in * c_out * k * k + 2 * c_out

    for i, block in enumerate(structure):
        if block.kind == STEM:
            c_in = stem_in_channels if i == 0 else block.c_in
            h_out = h // block.s
            f, p = conv(c_in, block.c_out, block.k, h_out)
            flops += f + block.c_out * h_out * h_out
            params += p
            h = h_out
            continue
        first_k = 1 if block.kind == "k1kx" else block.k
        for u in range(block.L):
            c_in = block.c_in if u == 0 else block.c_out
            s = block.s if u == 0 else 1
            h_out = h // s
            f1, p1 = conv(c_in, block.btn, first_k, h)
            f2, p2 = conv(block.btn, block.c_out, block.k, h_out)
            flops += f1 + f2 + (block.btn + block.c_out // (s * s)) * h * h
            params += p1 + p2
            if s == 2:
                flops += c_in * h * h
            if c_in != block.c_out:
                fp, pp = conv(c_in, block.c_out, 1, h_out)
                flops += fp + block.c_out * h_out * h_out
                params += pp
            h = h_out
    return SearchTimeCost(flops, params, count_layers(structure))


@dataclass(frozen=True)
class DetectorCost:
    """Cost of the deployed detector at batch 1 in :func:`damo_pipeline.models.profile`'s convention.

    Attributes:
        backbone_gflops / backbone_params: the searched backbone alone.
        gflops / params: the whole detector (backbone + neck + head).
        layers: TinyNAS layer count of the structure.
        out_channels: backbone output widths (the neck's ``in_channels``).
    """

    backbone_gflops: float
    backbone_params: int
    gflops: float
    params: int
    layers: int
    out_channels: Tuple[int, int, int]

    def to_dict(self) -> Dict[str, object]:
        data = asdict(self)
        data["out_channels"] = list(self.out_channels)
        return data


class CostModel:
    """Deployed-detector cost and op list of structures, for one :class:`DetectorTemplate`.

    Neck + head are traced once per distinct backbone-width triple and memoised on the instance.
    """

    def __init__(self, template: DetectorTemplate) -> None:
        self.template = template
        base = template.base_config()
        self._neck = dict(base.neck)
        self._head = dict(base.head)
        self._num_classes = base.num_classes
        self._act = template.backbone_act
        self._neck_head: Dict[Tuple[int, ...], TracedPart] = {}

    def neck_head(self, widths: Tuple[int, ...]) -> TracedPart:
        """Traced neck + head for backbone widths ``widths`` (memoised)."""
        key = tuple(int(w) for w in widths)
        part = self._neck_head.get(key)
        if part is None:
            part = trace_neck_head(self._neck, self._head, self._num_classes, key, self.template.img_size)
            self._neck_head[key] = part
        return part

    def backbone_ops(self, structure: Structure) -> List[Op]:
        """The deployed backbone's ops (analytic)."""
        return backbone_ops(structure, self.template.family, self.template.img_size, self._act)

    def ops(self, structure: Structure) -> Tuple[List[Op], Tuple[Op, ...]]:
        """``(backbone ops, neck + head ops)`` of the deployed detector."""
        widths = tuple(backbone_out_channels(structure, self.template.family))
        return self.backbone_ops(structure), self.neck_head(widths).ops

    def cost(self, structure: Structure, backbone_ops: Optional[Sequence[Op]] = None) -> DetectorCost:
        """FLOPs and params of backbone and detector (see the module docstring for the convention).

        ``backbone_ops`` may pass :meth:`backbone_ops` of ``structure`` when the caller already has them.
        """
        widths = tuple(backbone_out_channels(structure, self.template.family))
        ops = self.backbone_ops(structure) if backbone_ops is None else backbone_ops
        macs = sum(op.macs for op in ops)
        params = sum(op.params for op in ops)
        part = self.neck_head(widths)
        return DetectorCost(backbone_gflops=2 * macs / 1e9, backbone_params=params,
                            gflops=2 * (macs + part.macs) / 1e9, params=params + part.params,
                            layers=count_layers(structure), out_channels=widths)  # type: ignore[arg-type]
