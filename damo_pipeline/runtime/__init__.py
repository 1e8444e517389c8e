"""Inference runtimes for exported graphs (ONNX Runtime, TensorRT), importable without torch.

A runner takes ``[N, 3, H, W]`` float RGB 0..255 numpy images and returns ``(scores [N, A, C], boxes [N, A, 4])``
float32 numpy arrays, as the torch model does; the pipelines do NMS themselves.
"""
from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Dict, Union

from .graph_metadata import INPUT_NAME, METADATA_KEY, NMS_OUTPUTS, RAW_OUTPUTS, metadata_from_map
from .onnxruntime_runner import OnnxRuntimeRunner, default_threads, import_onnxruntime
from .tensorrt_runner import TensorRTRunner, fp16_needs_half_graph, tensorrt_status

__all__ = ["GRAPH_RUNNERS", "INPUT_NAME", "METADATA_KEY", "NMS_OUTPUTS", "OnnxRuntimeRunner", "RAW_OUTPUTS",
           "TensorRTRunner", "create_runner", "default_threads", "fp16_needs_half_graph", "import_onnxruntime",
           "metadata_from_map", "tensorrt_status"]

# engine name -> "module:class"; imported on use, so an absent runtime costs nothing until asked for.
GRAPH_RUNNERS: Dict[str, str] = {
    "onnxruntime": "damo_pipeline.runtime.onnxruntime_runner:OnnxRuntimeRunner",
    "tensorrt": "damo_pipeline.runtime.tensorrt_runner:TensorRTRunner",
}


def create_runner(engine: str, path: Union[str, Path], **options: Any) -> Any:
    """The runner of ``engine`` over the graph at ``path`` (options go to its constructor).

    Raises:
        ValueError: unknown engine (the message lists the known ones).
    """
    if engine not in GRAPH_RUNNERS:
        raise ValueError(f"Unknown graph engine {engine!r}; known: {sorted(GRAPH_RUNNERS)}.")
    module_name, class_name = GRAPH_RUNNERS[engine].split(":")
    return getattr(importlib.import_module(module_name), class_name)(path, **options)
