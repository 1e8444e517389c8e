"""The model zoo: each official DAMO-YOLO size as a :class:`ModelConfig` (data, not subclasses)."""
from __future__ import annotations

import fnmatch
from typing import Dict, List

from .class_names import COCO_CLASSES
from .config import ModelConfig


def _res_or_csp(structure: str, kind: str, act: str, out_indices: List[int]) -> dict:
    return {"type": kind, "structure": structure, "out_indices": out_indices, "with_spp": True,
            "use_focus": True, "act": act, "reparam": True}


def _nano_backbone(structure: str) -> dict:
    return {"type": "tinynas_mob", "structure": structure, "out_indices": [2, 4, 5], "with_spp": True,
            "use_focus": False, "act": "silu"}


def _neck(depth: float, hidden_ratio: float, cin: List[int], cout: List[int], act: str, depthwise: bool) -> dict:
    return {"type": "giraffe_neck_v2", "depth": depth, "hidden_ratio": hidden_ratio, "in_channels": cin,
            "out_channels": cout, "act": act, "depthwise": depthwise}


def _head(cin: List[int], reg_max: int, last_kernel_size: int) -> dict:
    return {"type": "zero_head", "in_channels": cin, "strides": [8, 16, 32], "reg_max": reg_max,
            "last_kernel_size": last_kernel_size, "legacy": False}


def _nano(name: str, structure: str, widths: List[int]) -> ModelConfig:
    return ModelConfig(name=name, img_size=416, backbone=_nano_backbone(structure),
                       neck=_neck(0.5, 0.5, widths, widths, "silu", True), head=_head(widths, 7, 1),
                       num_classes=80, class_names=list(COCO_CLASSES), score_threshold=0.03, iou_threshold=0.65)


def _large(name: str, backbone: dict, neck: dict, head_in: List[int]) -> ModelConfig:
    return ModelConfig(name=name, img_size=640, backbone=backbone, neck=neck, head=_head(head_in, 16, 3),
                       num_classes=80, class_names=list(COCO_CLASSES), score_threshold=0.05, iou_threshold=0.7)


_W = [128, 256, 512]
_ZOO: Dict[str, ModelConfig] = {
    "damoyolo-ns": _nano("damoyolo-ns", "tinynas_nano_small", [40, 80, 160]),
    "damoyolo-nm": _nano("damoyolo-nm", "tinynas_nano_middle", [64, 128, 256]),
    "damoyolo-nl": _nano("damoyolo-nl", "tinynas_nano_large", [80, 160, 320]),
    "damoyolo-t": _large("damoyolo-t", _res_or_csp("tinynas_L20_k1kx", "tinynas_res", "relu", [2, 4, 5]),
                         _neck(1.0, 1.0, [96, 192, 384], [64, 128, 256], "relu", False), [64, 128, 256]),
    "damoyolo-s": _large("damoyolo-s", _res_or_csp("tinynas_L25_k1kx", "tinynas_res", "relu", [2, 4, 5]),
                         _neck(1.0, 0.75, _W, _W, "relu", False), _W),
    "damoyolo-m": _large("damoyolo-m", _res_or_csp("tinynas_L35_kxkx", "tinynas_csp", "silu", [2, 3, 4]),
                         _neck(1.5, 1.0, _W, _W, "silu", False), _W),
    "damoyolo-l": _large("damoyolo-l", _res_or_csp("tinynas_L45_kxkx", "tinynas_csp", "silu", [2, 3, 4]),
                         _neck(2.0, 1.0, _W, _W, "silu", False), _W),
}


def list_models(pattern: str = "*") -> List[str]:
    """Zoo ids matching a shell-style ``pattern`` (``"damoyolo-n*"``), smallest first."""
    return [name for name in _ZOO if fnmatch.fnmatch(name, pattern)]


def get_model_config(name: str) -> ModelConfig:
    """A fresh copy of the zoo config ``name``.

    Raises:
        ValueError: unknown name; the message lists the known ones.
    """
    key = name.strip().lower().replace("_", "-")
    if key not in _ZOO:
        raise ValueError(f"Unknown model {name!r}; known models: {list_models()}.")
    return ModelConfig.from_dict(_ZOO[key].to_dict())
