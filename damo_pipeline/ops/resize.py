"""Resizing images to the network input and mapping boxes back (official DAMO-YOLO rules).

The official evaluation/demo path (``spec/architecture.md`` §7) resizes the uint8 RGB image with
``cv2.resize(..., interpolation=cv2.INTER_LINEAR)``:

* ``"stretch"`` (every current config, ``keep_ratio=False``): straight to the target size, aspect
  ratio not preserved;
* ``"letterbox"`` (legacy checkpoints, ``keep_ratio=True``): scaled by ``r = min(W_t / w, H_t / h)`` to
  ``(int(w * r), int(h * r))`` and zero-padded at the bottom/right to the target size (the image sits in
  the top-left corner, not centred).

Either way, boxes go back to the original image by per-axis factors ``w / w_r`` and ``h / h_r``, where
``(h_r, w_r)`` is the resized size before padding.
"""
from __future__ import annotations

import logging
from typing import Any, Tuple, Union

import cv2
import numpy as np

logger = logging.getLogger(__name__)

__all__ = ["RESIZE_MODES", "as_size", "letterbox_size", "resize_image", "rescale_boxes"]

RESIZE_MODES = ("stretch", "letterbox")

Size = Tuple[int, int]  # (height, width)
Boxes = Any  # a torch.Tensor or a numpy array of [N, 4] boxes


def letterbox_size(height: int, width: int, target_height: int, target_width: int) -> Size:
    """The official keep-ratio size: ``r = min(W_t / w, H_t / h)``, ``(int(h * r), int(w * r))``.

    Python float arithmetic and truncation as upstream, so a side that should equal the target may come out
    one pixel short, exactly like the official code. Sides never drop below 1 pixel.

    Returns:
        ``(resized_height, resized_width)``.
    """
    ratio = min(target_width / width, target_height / height)
    return max(1, int(height * ratio)), max(1, int(width * ratio))


def resize_image(image: np.ndarray, size: Size, mode: str = "stretch") -> Tuple[np.ndarray, Size]:
    """Resize an ``[H, W, C]`` uint8 image to the network input size.

    Args:
        image: ``[H, W, C]`` uint8 array (RGB for the detectors).
        size: target ``(height, width)``.
        mode: ``"stretch"`` or ``"letterbox"`` (see the module docstring).

    Returns:
        ``(canvas, resized_size)``: the ``[size[0], size[1], C]`` uint8 input and the ``(height, width)`` of
        the image inside it before padding (equal to ``size`` for ``"stretch"``).

    Raises:
        ValueError: unknown ``mode``, or an image that is not ``[H, W, C]`` uint8 with H, W > 0.
    """
    if mode not in RESIZE_MODES:
        raise ValueError(f"resize must be one of {RESIZE_MODES}, got {mode!r}.")
    if image.ndim != 3 or image.dtype != np.uint8 or image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"resize_image expects an [H, W, C] uint8 array with H, W > 0, "
                         f"got shape {image.shape} dtype {image.dtype}.")
    target_h, target_w = int(size[0]), int(size[1])
    height, width = image.shape[:2]
    if mode == "stretch":
        resized_h, resized_w = target_h, target_w
    else:
        resized_h, resized_w = letterbox_size(height, width, target_h, target_w)
    resized = cv2.resize(image, (resized_w, resized_h), interpolation=cv2.INTER_LINEAR)
    if resized.ndim == 2:  # cv2 drops a single channel axis
        resized = resized[:, :, None]
    if (resized_h, resized_w) == (target_h, target_w):
        return resized, (resized_h, resized_w)
    canvas = np.zeros((target_h, target_w, image.shape[2]), dtype=np.uint8)
    canvas[:resized_h, :resized_w] = resized
    return canvas, (resized_h, resized_w)


def rescale_boxes(boxes: Boxes, resized_size: Size, original_size: Size, clip: bool = True) -> Boxes:
    """Map xyxy boxes from network-input pixels back to original-image pixels, per axis.

    ``x * (w / w_r)`` and ``y * (h / h_r)`` as the official ``BoxList.resize`` (factors computed in double
    precision, applied in the boxes' dtype). The official flow does not clip; with ``clip=True`` the boxes are
    then clamped to ``[0, w] x [0, h]``.

    Args:
        boxes: ``[N, 4]`` xyxy boxes in input pixels (the resized image's top-left corner is the origin), a torch
            tensor or a numpy array (the result is of the same kind); integer boxes are converted to float32.
        resized_size: ``(h_r, w_r)`` of the image inside the input, before padding.
        original_size: ``(h, w)`` of the original image.
        clip: clamp to the original image.

    Returns:
        A new ``[N, 4]`` tensor or array, xyxy in original-image pixels.
    """
    (resized_h, resized_w), (height, width) = resized_size, original_size
    scale_x, scale_y = float(width) / float(resized_w), float(height) / float(resized_h)
    if isinstance(boxes, np.ndarray):
        if not np.issubdtype(boxes.dtype, np.floating):
            boxes = boxes.astype(np.float32)
        out = boxes * np.array([scale_x, scale_y, scale_x, scale_y], dtype=boxes.dtype)
        if clip:
            out[:, 0::2] = np.clip(out[:, 0::2], 0, float(width))
            out[:, 1::2] = np.clip(out[:, 1::2], 0, float(height))
        return out
    import torch  # only torch tensors get here

    if not boxes.is_floating_point():
        boxes = boxes.float()
    scale = torch.tensor([scale_x, scale_y, scale_x, scale_y], dtype=boxes.dtype, device=boxes.device)
    out = boxes * scale
    if clip:
        out[:, 0::2] = out[:, 0::2].clamp(0, float(width))
        out[:, 1::2] = out[:, 1::2].clamp(0, float(height))
    return out


def as_size(img_size: Union[int, Tuple[int, int]], name: str = "img_size") -> Size:
    """Normalise an ``int`` or ``(height, width)`` input size; both sides positive multiples of 32.

    Raises:
        ValueError / TypeError: naming ``name`` and the value.
    """
    if isinstance(img_size, bool):
        raise TypeError(f"{name} must be an int or a (height, width) pair, got {img_size!r}.")
    if isinstance(img_size, (int, np.integer)):
        size = (int(img_size), int(img_size))
    elif isinstance(img_size, (tuple, list)) and len(img_size) == 2 and all(
            isinstance(s, (int, np.integer)) and not isinstance(s, bool) for s in img_size):
        size = (int(img_size[0]), int(img_size[1]))
    else:
        raise TypeError(f"{name} must be an int or a (height, width) pair of ints, got {img_size!r}.")
    if min(size) <= 0 or size[0] % 32 or size[1] % 32:
        raise ValueError(f"{name} sides must be positive multiples of 32 (the network halves them 5 times), "
                         f"got {img_size!r}; try {max(32, round(max(size) / 32) * 32)}.")
    return size
