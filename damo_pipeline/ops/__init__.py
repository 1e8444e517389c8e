"""Operations shared by the pipelines and tools: NMS (torch and numpy) and resizing.

Imported lazily so that the numpy parts (``numpy_nms``, ``resize``) load without torch.
"""
from __future__ import annotations

import importlib
from typing import Any

_LAZY = {"nms": "torch_nms", "batched_nms": "torch_nms", "multiclass_nms": "torch_nms",
         "nms_numpy": "numpy_nms",
         "batched_nms_numpy": "numpy_nms", "multiclass_nms_numpy": "numpy_nms"}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
