"""damo_pipeline: the DAMO-YOLO detectors, easy to use, train and publish."""
from .models import Detector, ModelConfig, build_model, list_models
from .models.checkpoint import build_from_checkpoint, load_checkpoint, recognize_checkpoint
from .models.profile import profile
from .version import __version__

__all__ = [
    "Detector", "ModelConfig", "__version__", "build_from_checkpoint", "build_model", "list_models",
    "load_checkpoint", "profile", "recognize_checkpoint",
]
