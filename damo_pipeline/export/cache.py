"""A cache of exported graphs, keyed by what determines the graph: weights, architecture, input size, options.

The ONNX Runtime and TensorRT engines export a model on first use and reuse the file afterwards, across
processes: ``<cache root>/onnx/<architecture>-<H>x<W>-<key>.onnx`` (``DAMO_PIPELINE_CACHE``, see
:func:`damo_pipeline.hub.cache_root`). The key changes when any weight, the configuration, the input size, an
export option, this library's version or torch's version changes, so a stale graph is never served.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any, Dict, Optional, Tuple, Union

import torch
from filelock import FileLock

from ..hub.cache import cache_root
from ..models import Detector
from ..ops.resize import as_size
from ..version import __version__
from .onnx_export import DEFAULT_OPSET, export_onnx

logger = logging.getLogger(__name__)

__all__ = ["cached_onnx_export", "onnx_cache_key", "weights_digest"]


def weights_digest(model: torch.nn.Module) -> str:
    """sha256 over every state_dict entry's name, dtype, shape and bytes (in state_dict order)."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        data = tensor.detach().cpu().contiguous()
        digest.update(f"{name}|{data.dtype}|{tuple(data.shape)}|".encode())
        digest.update(data.reshape(-1).view(torch.uint8).numpy().tobytes() if data.numel() else b"")
    return digest.hexdigest()


def onnx_cache_key(model: Detector, img_size: Union[int, Tuple[int, int]], **export_options: Any) -> str:
    """The cache key of ``model`` exported at ``img_size`` with ``export_options`` (hex sha256)."""
    height, width = as_size(img_size)
    description: Dict[str, Any] = {
        "weights": weights_digest(model),
        "config": model.config.to_dict(),
        "img_size": [height, width],
        "options": {"opset": DEFAULT_OPSET, "batch": "dynamic", "nms": False, "half": False, **export_options},
        "damo_pipeline": __version__,
        "torch": torch.__version__,
    }
    return hashlib.sha256(json.dumps(description, sort_keys=True, default=str).encode()).hexdigest()


def cached_onnx_export(model: Detector, img_size: Union[int, Tuple[int, int]],
                       cache_dir: Optional[Union[str, os.PathLike]] = None, **export_options: Any) -> Path:
    """The path of ``model``'s raw graph (no NMS) at ``img_size``, exported now unless the cache has it.

    Args:
        model: the detector with its weights (training form or fused).
        img_size: input size, an int or ``(height, width)``.
        cache_dir: cache root (default ``$DAMO_PIPELINE_CACHE`` or ``~/.cache/damo_pipeline``).
        **export_options: passed to :func:`export_onnx` (``opset``, ``batch``, ``half``); part of the key.
    """
    height, width = as_size(img_size)
    key = onnx_cache_key(model, (height, width), **export_options)
    folder = cache_root(cache_dir) / "onnx"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{model.config.name}-{height}x{width}-{key[:16]}.onnx"
    with FileLock(str(path) + ".lock"):
        if path.is_file():
            logger.debug("Using the cached graph %s", path)
            return path
        logger.info("Exporting %s at %dx%d to ONNX (once; cached as %s)", model.config.name, height, width, path)
        export_onnx(model, path, img_size=(height, width), nms=False, **export_options)
    return path


def cached_int8_export(model: Detector, img_size: Union[int, Tuple[int, int]],
                       calibration_images: Any, cache_dir: Optional[Union[str, os.PathLike]] = None,
                       num_images: Optional[int] = 100) -> Path:
    """The int8 graph of ``model`` at ``img_size``, calibrated on ``calibration_images``; quantised now unless cached.

    The key adds to the float32 graph's key a sha256 over the calibration files' contents and the quantisation
    settings, so other photos give another graph.

    Args:
        model: the detector with its weights.
        img_size: input size, an int or ``(height, width)``.
        calibration_images: photos like the deployment's (a folder, a glob, a file or a list of these; see
            :func:`damo_pipeline.export.find_calibration_images`).
        cache_dir: cache root.
        num_images: calibration images used, spread evenly over the sorted files (``None``: all).
    """
    from .quantize import DEFAULT_OP_TYPES, find_calibration_images, quantize_onnx

    fp32 = cached_onnx_export(model, img_size, cache_dir=cache_dir)
    files = find_calibration_images(calibration_images, num_images)
    digest = hashlib.sha256(json.dumps({"graph": fp32.name, "op_types": DEFAULT_OP_TYPES}).encode())
    for file in files:
        digest.update(file.read_bytes())
    path = fp32.with_name(f"{fp32.stem}-int8-{digest.hexdigest()[:16]}.onnx")
    with FileLock(str(path) + ".lock"):
        if path.is_file():
            logger.debug("Using the cached int8 graph %s", path)
            return path
        logger.info("Quantising %s to int8 on %d calibration images (once; cached as %s)", model.config.name,
                    len(files), path)
        quantize_onnx(fp32, path, files, num_images=None)
    return path
