"""The layers a deployed detector runs, as plain descriptors: analytic for the backbone, traced for the rest.

:func:`backbone_ops` writes down, without torch, every operation the *deployed* TinyNAS backbone
(``tinynas_res`` / ``tinynas_csp`` after ``Detector.fuse()``) executes at a given input size: each conv
with its shape, each activation, residual add, concat and max-pool with its element count. The same list
gives the backbone's FLOPs and parameters (:mod:`.cost`) and its latency from a lookup table
(:mod:`.latency`). :func:`trace_ops` records the same descriptors from any module by running it on the
``meta`` device (no memory, no arithmetic); it is used for the neck and head, whose shapes depend only on the
backbone's three output widths, and by the tests to check the analytic list against the real backbone.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Sequence, Tuple

from .space import STEM, Block, Structure

logger = logging.getLogger(__name__)

FAMILIES = ("res", "csp")
FAMILY_BACKBONE = {"res": "tinynas_res", "csp": "tinynas_csp"}
FAMILY_ACT = {"res": "relu", "csp": "silu"}
FAMILY_OUT_INDICES = {"res": (2, 4, 5), "csp": (2, 3, 4)}

ELEMENTWISE_KINDS = ("relu", "silu", "add", "cat", "maxpool", "upsample", "matmul", "other")


@dataclass(frozen=True)
class Op:
    """One operation of a forward pass at batch 1.

    Attributes:
        kind: ``"conv"`` or one of :data:`ELEMENTWISE_KINDS`.
        c_in, c_out, k, s, groups, h, w: a conv's channels, kernel, stride, groups and *input* size
            (0 for other kinds).
        bn: the conv is followed by a BatchNorm in the re-parameterised form (``fuse(fold_bn=False)``,
            the form whose parameters :func:`damo_pipeline.models.profile` counts); otherwise it has a bias.
        numel: elements of an elementwise op's output.
        param: kind-specific integer (the max-pool kernel; a matmul's inner dimension).
    """

    kind: str
    c_in: int = 0
    c_out: int = 0
    k: int = 0
    s: int = 1
    groups: int = 1
    h: int = 0
    w: int = 0
    bn: bool = False
    numel: int = 0
    param: int = 0

    @property
    def out_hw(self) -> Tuple[int, int]:
        """A conv's output size with 'same' padding ``k // 2``."""
        pad = self.k // 2
        return (self.h + 2 * pad - self.k) // self.s + 1, (self.w + 2 * pad - self.k) // self.s + 1

    @property
    def macs(self) -> int:
        """Multiply-accumulates of a conv or matmul (0 for other kinds)."""
        if self.kind == "matmul":
            return self.numel * self.param
        if self.kind != "conv":
            return 0
        ho, wo = self.out_hw
        return self.c_out * ho * wo * (self.c_in // self.groups) * self.k * self.k

    @property
    def params(self) -> int:
        """Parameters of a conv: weight, plus BatchNorm weight and bias (``bn``) or a bias."""
        if self.kind != "conv":
            return 0
        weight = self.c_out * (self.c_in // self.groups) * self.k * self.k
        return weight + (2 * self.c_out if self.bn else self.c_out)


def _conv(c_in: int, c_out: int, k: int, s: int, h: int, w: int, bn: bool) -> Op:
    return Op("conv", c_in, c_out, k, s, 1, h, w, bn=bn)


def _eltwise(kind: str, numel: int, param: int = 0) -> Op:
    return Op(kind, numel=numel, param=param)


class _Builder:
    """Appends ops while tracking the feature-map size."""

    def __init__(self, h: int, w: int) -> None:
        self.ops: List[Op] = []
        self.h, self.w = h, w

    def conv(self, c_in: int, c_out: int, k: int, s: int, bn: bool, act: str = "") -> None:
        op = _conv(c_in, c_out, k, s, self.h, self.w, bn)
        self.ops.append(op)
        self.h, self.w = op.out_hw
        if act:
            self.ops.append(_eltwise(act, c_out * self.h * self.w))

    def eltwise(self, kind: str, channels: int, param: int = 0) -> None:
        self.ops.append(_eltwise(kind, channels * self.h * self.w, param))

    def focus(self, c_out: int, k: int, act: str) -> None:
        self.h, self.w = self.h // 2, self.w // 2
        self.eltwise("cat", 12)
        self.conv(12, c_out, k, 1, True, act)

    def spp(self, c: int) -> None:
        hidden = c // 2
        self.conv(c, hidden, 1, 1, True, "silu")
        for k in (5, 9, 13):
            self.eltwise("maxpool", hidden, k)
        self.eltwise("cat", 4 * hidden)
        self.conv(4 * hidden, c, 1, 1, True, "silu")

    def res_unit(self, c_in: int, c_out: int, btn: int, k: int, s: int, block_type: str, act: str) -> None:
        h, w = self.h, self.w
        self.conv(c_in, btn, k if block_type == "kxkx" else 1, 1, True, act)
        self.conv(btn, c_out, k, s, False)  # RepConv merged into one biased 3x3 conv
        if s != 2:
            if c_in != c_out:
                self.ops.append(_conv(c_in, c_out, 1, 1, h, w, True))
            self.eltwise("add", c_out)
        self.eltwise(act, c_out)


def _check_family(family: str) -> None:
    if family not in FAMILIES:
        raise ValueError(f"Unknown backbone family {family!r}; choose one of {FAMILIES}.")


def _check_size(img_size: int) -> None:
    if not isinstance(img_size, int) or img_size <= 0 or img_size % 32:
        raise ValueError(f"img_size must be a positive multiple of 32, got {img_size!r}.")


def csp_groups(blocks: Sequence[Block]) -> List[List[Block]]:
    """Super-blocks grouped into CSP wrappers: a stride-2 block opens a wrapper, stride-1 blocks join it."""
    groups: List[List[Block]] = []
    for block in blocks:
        if block.s == 2 or not groups:
            groups.append([block])
        else:
            groups[-1].append(block)
    return groups


def backbone_ops(structure: Structure, family: str, img_size: int, act: str = "") -> List[Op]:
    """Every op of the deployed (fused) backbone on a ``[1, 3, img_size, img_size]`` input, in order.

    Args:
        structure: stem + super-blocks.
        family: ``"res"`` (TinyNAS_res: plain residual stages, SPP after unit 0 of the last stage) or
            ``"csp"`` (TinyNAS_csp: CSP wrappers, ReLU wrapper convs, SPP after the last downsampler).
        img_size: square input side (multiple of 32).
        act: activation of stem and residual units; default ReLU for res, SiLU for csp.
    """
    _check_family(family)
    _check_size(img_size)
    act = act or FAMILY_ACT[family]
    stem, blocks = structure[0], list(structure[1:])
    if stem.kind != STEM:
        raise ValueError("Structure entry 0 must be the stem.")
    b = _Builder(img_size, img_size)
    b.focus(stem.c_out, stem.k, act)
    if family == "res":
        for index, block in enumerate(blocks):
            for u in range(block.L):
                b.res_unit(block.c_in if u == 0 else block.c_out, block.c_out, block.btn, block.k,
                           block.s if u == 0 else 1, block.kind, act)
                if u == 0 and index == len(blocks) - 1:
                    b.spp(block.c_out)
        return b.ops
    groups = csp_groups(blocks)
    for gi, group in enumerate(groups):
        first, last = group[0], group[-1]
        hidden = first.c_out // 2
        b.conv(first.c_in, 2 * hidden, 3, 2, True, "relu")
        if gi == len(groups) - 1:
            b.spp(2 * hidden)
        units = [(entry, i) for entry in group for i in range(entry.L - 1 if entry.s == 2 else entry.L)]
        if not units:
            continue
        b.conv(2 * hidden, last.c_out // 2, 1, 1, True, "relu")  # conv_shortcut (runs first)
        b.conv(2 * hidden, hidden, 1, 1, True, "relu")  # conv_start
        for entry, i in units:
            width_in = entry.c_in // 2 if (i == 0 and entry.s != 2) else entry.c_out // 2
            b.res_unit(width_in, entry.c_out // 2, entry.btn, entry.k, 1, entry.kind, act)
        main_width = units[-1][0].c_out // 2  # the last inner unit's width (= hidden when blocks 3, 4 are tied)
        b.eltwise("cat", main_width + last.c_out // 2)
        b.conv(main_width + last.c_out // 2, last.c_out, 1, 1, True, "relu")
    return b.ops


def backbone_out_channels(structure: Structure, family: str) -> List[int]:
    """Widths of the backbone's three outputs (strides 8, 16, 32): the neck's ``in_channels``."""
    _check_family(family)
    if family == "res":
        return [structure[i].c_out for i in FAMILY_OUT_INDICES["res"]]
    widths = [structure[0].c_out] + [group[-1].c_out for group in csp_groups(structure[1:])]
    return [widths[i] for i in FAMILY_OUT_INDICES["csp"]]


# --- tracing real modules ---------------------------------------------------------------------------------

_VIEW_OPS = {"alias", "view", "reshape", "_reshape_alias", "permute", "slice", "select", "unsqueeze", "squeeze",
             "expand", "t", "transpose", "detach", "_unsafe_view", "split", "chunk", "unbind", "clone", "lift_fresh"}
_KIND_OF_ATEN = {"relu": "relu", "relu_": "relu", "silu": "silu", "silu_": "silu", "add": "add", "add_": "add",
                 "cat": "cat", "max_pool2d": "maxpool", "max_pool2d_with_indices": "maxpool",
                 "upsample_nearest2d": "upsample"}


def _numel(result: Any) -> int:
    import torch

    if isinstance(result, torch.Tensor):
        return result.numel()
    if isinstance(result, (tuple, list)) and result and isinstance(result[0], torch.Tensor):
        return result[0].numel()
    return 0


def _op_from_aten(name: str, args: Sequence[Any], kwargs: Dict[str, Any], result: Any) -> List[Op]:
    base = name.split(".")[0]
    if base in ("conv2d", "convolution"):
        x, weight = args[0], args[1]
        stride = args[3] if len(args) > 3 else kwargs.get("stride", 1)
        group_index = 8 if base == "convolution" else 6
        groups = args[group_index] if len(args) > group_index else kwargs.get("groups", 1)
        s = stride[0] if isinstance(stride, (list, tuple)) else int(stride)
        has_bias = len(args) > 2 and args[2] is not None
        return [Op("conv", int(x.shape[1]), int(weight.shape[0]), int(weight.shape[-1]), int(s), int(groups),
                   int(x.shape[-2]), int(x.shape[-1]), bn=not has_bias)]
    if base in _VIEW_OPS:
        return []
    if base in ("linear", "mm", "addmm", "matmul", "bmm"):
        inner = args[1].shape[-1] if base == "addmm" else args[0].shape[-1]
        return [Op("matmul", numel=_numel(result), param=int(inner))]
    kind = _KIND_OF_ATEN.get(base, "other")
    param = 0
    if kind == "maxpool":
        kernel = args[1] if len(args) > 1 else kwargs["kernel_size"]
        param = int(kernel[0] if isinstance(kernel, (list, tuple)) else kernel)
    numel = _numel(result)
    return [Op(kind, numel=numel, param=param)] if numel else []


def trace_ops(fn: Callable[[], Any]) -> List[Op]:
    """The ops ``fn()`` dispatches, in order (run it on meta tensors: nothing is computed).

    Convs become ``conv`` ops (``bn=True`` when the conv has no bias, i.e. a BatchNorm follows it in the
    re-parameterised form); views cost nothing and are dropped; anything unknown is ``other``.
    """
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode

    ops: List[Op] = []

    class _Recorder(TorchDispatchMode):
        def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
            result = func(*args, **(kwargs or {}))
            ops.extend(_op_from_aten(str(func).replace("aten.", ""), args, kwargs or {}, result))
            return result

    with torch.inference_mode(), _Recorder():
        fn()
    return ops


def fuse_modules(module: Any, fold_bn: bool = True) -> None:
    """Re-parameterise every sub-module that can (RepConv; with ``fold_bn`` every conv + BN), in place.

    The same rule as :meth:`damo_pipeline.models.Detector.fuse`, for a neck or head on its own.
    """
    from damo_pipeline.models.layers import RepConv

    for sub in list(module.modules()):
        fuse = getattr(sub, "fuse", None)
        if sub is module or not callable(fuse):
            continue
        if fold_bn or isinstance(sub, RepConv):
            fuse()


@dataclass(frozen=True)
class TracedPart:
    """Ops (deploy form) and parameter count (``fuse(fold_bn=False)`` form) of a traced sub-network."""

    ops: Tuple[Op, ...]
    params: int

    @property
    def macs(self) -> int:
        return sum(op.macs for op in self.ops)


def trace_neck_head(neck_config: Dict[str, Any], head_config: Dict[str, Any], num_classes: int,
                    in_channels: Sequence[int], img_size: int) -> TracedPart:
    """Build neck + head for backbone widths ``in_channels`` on the meta device and trace their ops.

    Args:
        neck_config / head_config: the model config's dicts (``neck.in_channels`` is replaced).
        num_classes: the head's class count.
        in_channels: backbone widths at strides 8, 16, 32.
        img_size: square input side of the detector.
    """
    import torch

    from damo_pipeline.models import HEADS, NECKS

    _check_size(img_size)
    with torch.device("meta"):
        neck = NECKS.build({**neck_config, "in_channels": list(in_channels)})
        head = HEADS.build({**head_config, "num_classes": num_classes})
        fuse_modules(neck, fold_bn=False)
        fuse_modules(head, fold_bn=False)
        params = sum(p.numel() for p in neck.parameters()) + sum(p.numel() for p in head.parameters())
        fuse_modules(neck)
        fuse_modules(head)
        neck.eval()
        head.eval()
        features = [torch.zeros(1, c, img_size // s, img_size // s) for c, s in zip(in_channels, (8, 16, 32))]
        ops = trace_ops(lambda: head(neck(features)))
    return TracedPart(tuple(ops), params)
