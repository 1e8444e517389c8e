"""Operations shared by the pipelines and tools: NMS (torch and numpy) and resizing.

Imported lazily so that the numpy parts (``numpy_nms``, ``resize``) load without torch.
"""
from __future__ import annotations

from .._lazy import lazy_exports

_LAZY = {"nms": "torch_nms", "batched_nms": "torch_nms", "multiclass_nms": "torch_nms",
         "nms_numpy": "numpy_nms", "batched_nms_numpy": "numpy_nms", "multiclass_nms_numpy": "numpy_nms"}

__all__ = sorted(_LAZY)

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
