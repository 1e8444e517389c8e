"""Training and evaluation: the official DAMO-YOLO recipe as data, one trainer, a stand-alone evaluator.

Import-light: pycocotools, tensorboard and matplotlib are imported only by the functions that use them.
"""
from .checkpoint import load_training_checkpoint, save_atomic
from .config import TrainConfig
from .distributed import DistContext, init_distributed, resolve_device
from .ema import ModelEMA
from .evaluator import COCOEvaluator, EvalResult, coco_evaluate
from .hooks import Callback, LossPlugin, StepContext, StepInfo
from .optim import OPTIMIZERS, LRSchedule, build_optimizer, param_groups
from .trainer import Trainer, TrainResult, seed_everything

__all__ = [
    "COCOEvaluator", "Callback", "DistContext", "EvalResult", "LRSchedule", "LossPlugin", "ModelEMA", "OPTIMIZERS",
    "StepContext", "StepInfo", "TrainConfig", "TrainResult", "Trainer", "build_optimizer", "coco_evaluate",
    "init_distributed", "load_training_checkpoint", "param_groups", "resolve_device", "save_atomic",
    "seed_everything",
]
