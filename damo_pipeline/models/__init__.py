"""The DAMO-YOLO model zoo: configs as data, one ``build_model``."""
from ._builder import build_model, resolve_config
from ._pretrained import ZOO_CARDS, PretrainedCfg, ZooCard
from ._registry import get_model_config, list_models
from .backbones import BACKBONES, list_structures, load_structure
from .checkpoint import CheckpointMismatchError, build_from_checkpoint, load_checkpoint, recognize_checkpoint
from .class_names import COCO_CLASSES
from .config import ModelConfig
from .detector import Detector
from .heads import HEADS
from .necks import NECKS
from .profile import ModelProfile, profile

__all__ = [
    "BACKBONES", "COCO_CLASSES", "CheckpointMismatchError", "Detector", "HEADS", "ModelConfig", "ModelProfile",
    "NECKS", "PretrainedCfg", "ZOO_CARDS", "ZooCard", "build_from_checkpoint", "build_model", "get_model_config",
    "list_models", "list_structures", "load_checkpoint", "load_structure", "profile", "recognize_checkpoint",
    "resolve_config",
]
