"""damo_pipeline: the DAMO-YOLO detectors, easy to use, train and publish.

Public names are imported on first use: ``from damo_pipeline import pipeline`` stays light (no torch) until a
torch engine or model is asked for, so an ONNX Runtime deployment never loads torch.
"""
from __future__ import annotations

from ._lazy import lazy_exports
from .version import __version__

_LAZY = {
    "DetectionResult": "pipelines.results", "Detector": "models", "GraphObjectDetectionPipeline":
    "pipelines.graph_detection", "ModelConfig": "models", "ObjectDetectionPipeline": "pipelines.object_detection",
    "build_from_checkpoint": "models.checkpoint", "build_model": "models", "export_onnx": "export.onnx_export",
    "list_models": "models", "load_checkpoint": "models.checkpoint", "load_detector": "hub",
    "pipeline": "pipelines.registry", "profile": "models.profile", "push_to_hub": "hub",
    "recognize_checkpoint": "models.checkpoint", "save_pretrained": "hub",
}

__all__ = sorted([*_LAZY, "__version__"])

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
