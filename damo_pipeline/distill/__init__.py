"""Knowledge distillation (teacher -> student) on neck features, as DAMO-YOLO trains its starred models."""
from .feature_loss import FeatureDistillationLoss, channel_wise_divergence, distill_weight
from .plugin import FeatureDistillation
from .teacher import FrozenTeacher, check_pair

__all__ = ["FeatureDistillation", "FeatureDistillationLoss", "FrozenTeacher", "channel_wise_divergence", "check_pair",
           "distill_weight"]
