"""Decode any image file a dataset may hold into an upright uint8 RGB array.

PIL decodes (as the official torchvision ``CocoDetection`` loader does), the EXIF orientation is applied, and every
colour mode is converted to RGB: L/1 (grayscale), RGBA/LA/PA (alpha dropped), CMYK, P (palette), 16-bit and float
images. Files that are missing, truncated or not images return ``None`` instead of raising, with a flag saying so;
the caller decides what to do (training skips them).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional, Tuple, Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .report import (
    FLAG_CMYK, FLAG_DECODED, FLAG_EXIF_ROTATED, FLAG_GRAYSCALE, FLAG_OTHER_MODE, FLAG_RGBA, FLAG_UNREADABLE,
)

logger = logging.getLogger(__name__)

EXIF_ORIENTATION_TAG = 0x0112
_SWAPPING_ORIENTATIONS = (5, 6, 7, 8)  # orientations that exchange width and height
_DECODE_ERRORS = (OSError, ValueError, SyntaxError, UnidentifiedImageError, Image.DecompressionBombError)
_ALPHA_MODES = ("RGBA", "RGBa", "LA", "La", "PA")
_GRAY_MODES = ("L", "1")
_HIGH_DEPTH_MODES = ("I", "I;16", "I;16L", "I;16B", "I;16N", "F")


def _exif_orientation(image: Image.Image) -> int:
    """The EXIF orientation tag (1..8), 1 when absent or unreadable."""
    try:
        value = image.getexif().get(EXIF_ORIENTATION_TAG, 1)
    except _DECODE_ERRORS:
        return 1
    return int(value) if isinstance(value, int) and 1 <= value <= 8 else 1


def _high_depth_to_uint8(image: Image.Image) -> np.ndarray:
    """16-bit or float single-channel image -> uint8 HxW (16-bit: top byte; float/32-bit: clipped 0..255)."""
    array = np.asarray(image)
    if image.mode.startswith("I;16") or (array.dtype.kind in "iu" and array.max(initial=0) > 255):
        return (array.astype(np.uint32) >> 8).clip(0, 255).astype(np.uint8)
    return np.clip(array, 0, 255).astype(np.uint8)


def _to_rgb_array(image: Image.Image) -> Tuple[np.ndarray, int]:
    """Convert a decoded PIL image of any mode to an HxWx3 uint8 RGB array and the conversion flag."""
    mode = image.mode
    if mode == "RGB":
        return np.array(image, dtype=np.uint8), 0
    if mode in _GRAY_MODES:
        return np.array(image.convert("RGB"), dtype=np.uint8), FLAG_GRAYSCALE
    if mode in _ALPHA_MODES:
        return np.array(image.convert("RGB"), dtype=np.uint8), FLAG_RGBA
    if mode == "CMYK":
        return np.array(image.convert("RGB"), dtype=np.uint8), FLAG_CMYK
    if mode == "P":
        converted = image.convert("RGBA") if "transparency" in image.info else image
        return np.array(converted.convert("RGB"), dtype=np.uint8), FLAG_OTHER_MODE
    if mode in _HIGH_DEPTH_MODES:
        gray = _high_depth_to_uint8(image)
        return np.repeat(gray[:, :, None], 3, axis=2), FLAG_OTHER_MODE
    return np.array(image.convert("RGB"), dtype=np.uint8), FLAG_OTHER_MODE


def decode_image(path: Union[str, Path]) -> Tuple[Optional[np.ndarray], int]:
    """Decode an image file to an upright RGB array.

    Args:
        path: image file.

    Returns:
        ``(image, flags)``: ``image`` is a uint8 array [H, W, 3] in RGB order with the EXIF orientation applied,
        or ``None`` when the file is missing or cannot be decoded; ``flags`` is a bit set of
        ``damo_pipeline.data.report.FLAG_*`` describing what happened (decoded, unreadable, converted, rotated).
    """
    try:
        with Image.open(path) as image:
            image.load()
            flags = FLAG_DECODED
            if _exif_orientation(image) != 1:
                image = ImageOps.exif_transpose(image)
                flags |= FLAG_EXIF_ROTATED
            array, mode_flag = _to_rgb_array(image)
    except _DECODE_ERRORS as error:
        logger.debug("Cannot decode image %s: %s", path, error)
        return None, FLAG_DECODED | FLAG_UNREADABLE
    if array.ndim != 3 or array.shape[2] != 3 or array.shape[0] == 0 or array.shape[1] == 0:
        logger.debug("Image %s decoded to an unusable shape %s", path, array.shape)
        return None, FLAG_DECODED | FLAG_UNREADABLE
    return np.ascontiguousarray(array), flags | mode_flag


def read_image_size(path: Union[str, Path]) -> Optional[Tuple[int, int]]:
    """Upright ``(height, width)`` of an image from its header only (EXIF rotation accounted), None if unreadable."""
    try:
        with Image.open(path) as image:
            width, height = image.size
            if _exif_orientation(image) in _SWAPPING_ORIENTATIONS:
                width, height = height, width
    except _DECODE_ERRORS as error:
        logger.debug("Cannot read the header of %s: %s", path, error)
        return None
    return int(height), int(width)
