"""Deterministic image transforms shared by training and evaluation: resizes, flip, tensor conversion.

Images are uint8 [H, W, 3] RGB arrays; boxes are float32 [K, 4] xyxy in the pixels of the image they go with.
"""
from __future__ import annotations

from typing import Callable, Dict, Tuple

import cv2
import numpy as np
import torch

Scale = Tuple[float, float]


def stretch_resize(image: np.ndarray, size: int) -> Tuple[np.ndarray, Scale]:
    """Resize to ``size`` x ``size`` ignoring the aspect ratio (official, keep_ratio False), cv2 INTER_LINEAR.

    Returns:
        ``(resized, (sx, sy))`` with network = original * scale per axis.
    """
    height, width = image.shape[:2]
    if (height, width) != (size, size):
        image = cv2.resize(image, (size, size), interpolation=cv2.INTER_LINEAR)
    return image, (size / width, size / height)


def letterbox_resize(image: np.ndarray, size: int, pad_value: int = 0) -> Tuple[np.ndarray, Scale]:
    """Keep-ratio resize (legacy keep_ratio True): ratio r = min(S/w, S/h), new size (floor(w r), floor(h r)),
    placed top-left on a ``size`` x ``size`` canvas of ``pad_value`` (the eval loader pads with 0).

    Returns:
        ``(canvas, (sx, sy))`` with sx = floor(w r) / w and sy = floor(h r) / h.
    """
    height, width = image.shape[:2]
    ratio = min(size / width, size / height)
    new_w, new_h = max(1, int(width * ratio)), max(1, int(height * ratio))
    resized = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR) \
        if (new_h, new_w) != (height, width) else image
    canvas = np.full((size, size, 3), pad_value, dtype=np.uint8)
    canvas[:new_h, :new_w] = resized
    return canvas, (new_w / width, new_h / height)


RESIZE_FUNCTIONS: Dict[str, Callable[[np.ndarray, int], Tuple[np.ndarray, Scale]]] = {
    "stretch": stretch_resize,
    "letterbox": letterbox_resize,
}


def get_resize(name: str) -> Callable[[np.ndarray, int], Tuple[np.ndarray, Scale]]:
    """The resize function registered as ``name`` (``stretch`` or ``letterbox``)."""
    if name not in RESIZE_FUNCTIONS:
        raise ValueError(f"Unknown resize {name!r}; choose one of {sorted(RESIZE_FUNCTIONS)}.")
    return RESIZE_FUNCTIONS[name]


def scale_boxes(boxes: np.ndarray, scale: Scale) -> np.ndarray:
    """Multiply xyxy boxes [K, 4] by (sx, sy) per axis."""
    return (boxes * np.array([scale[0], scale[1], scale[0], scale[1]], dtype=np.float32)).astype(np.float32)


def hflip(image: np.ndarray, boxes: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Mirror horizontally: x1' = W - x2, x2' = W - x1."""
    width = image.shape[1]
    flipped = boxes.copy()
    flipped[:, 0] = width - boxes[:, 2]
    flipped[:, 2] = width - boxes[:, 0]
    return np.ascontiguousarray(image[:, ::-1]), flipped


def to_chw_tensor(image: np.ndarray) -> torch.Tensor:
    """uint8 [H, W, 3] -> float32 tensor [3, H, W] with values 0..255 (mean 0, std 1: no normalisation)."""
    # numpy does the uint8 -> float32 cast: on this torch CPU build Tensor.float() on uint8 is ~30x slower.
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32))
