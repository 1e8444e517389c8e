"""Task pipelines: ``pipeline("image-object-detection", model=..., engine=...)`` and what it returns.

Names are imported on first use, so ``from damo_pipeline.pipelines import pipeline`` does not import torch (the
ONNX Runtime engine runs without it).
"""
from __future__ import annotations

from .._lazy import lazy_exports

_LAZY = {
    "BasePipeline": "base", "DetectionResult": "results", "FrameSource": "sources", "GraphObjectDetectionPipeline":
    "graph_detection", "ImageDownloadError": "errors", "ImageLoadOptions": "inputs", "InvalidImageError": "errors",
    "LoadedImage": "inputs", "ObjectDetectionPipeline": "object_detection", "PIPELINE_REGISTRY": "registry",
    "Pipeline": "torch_pipeline", "TaskRegistry": "registry", "TaskSpec": "registry", "list_tasks": "registry",
    "load_image": "inputs", "open_source": "sources", "pipeline": "registry", "prepare_detector": "object_detection",
    "register_pipeline": "registry", "resolve_device": "torch_pipeline",
}

__all__ = sorted(_LAZY)

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
