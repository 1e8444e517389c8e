"""Task pipelines: ``pipeline("image-object-detection", model=...)`` and what it returns."""
from .base import Pipeline, resolve_device
from .errors import ImageDownloadError, InvalidImageError
from .inputs import ImageLoadOptions, LoadedImage, load_image
from .object_detection import ObjectDetectionPipeline, prepare_detector
from .registry import PIPELINE_REGISTRY, TaskRegistry, TaskSpec, list_tasks, pipeline, register_pipeline
from .results import DetectionResult
from .sources import FrameSource, open_source

__all__ = [
    "DetectionResult", "FrameSource", "ImageDownloadError", "ImageLoadOptions", "InvalidImageError", "LoadedImage",
    "ObjectDetectionPipeline", "PIPELINE_REGISTRY", "Pipeline", "TaskRegistry", "TaskSpec", "list_tasks",
    "load_image", "open_source", "pipeline", "prepare_detector", "register_pipeline", "resolve_device",
]
