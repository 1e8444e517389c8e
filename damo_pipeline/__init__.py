"""damo_pipeline: the DAMO-YOLO detectors, easy to use, train and publish."""
from .hub import load_detector, push_to_hub, save_pretrained
from .models import Detector, ModelConfig, build_model, list_models
from .models.checkpoint import build_from_checkpoint, load_checkpoint, recognize_checkpoint
from .models.profile import profile
from .pipelines import DetectionResult, ObjectDetectionPipeline, pipeline
from .version import __version__

__all__ = [
    "DetectionResult", "Detector", "ModelConfig", "ObjectDetectionPipeline", "__version__", "build_from_checkpoint",
    "build_model", "list_models", "load_checkpoint", "load_detector", "pipeline", "profile", "push_to_hub",
    "recognize_checkpoint", "save_pretrained",
]
