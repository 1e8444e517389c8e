"""The frozen teacher: a detector kept in eval mode, without gradients, returning its neck features."""
from __future__ import annotations

from typing import List, Optional, Sequence

import torch
from torch import nn

from ..models import Detector


def check_pair(teacher: nn.Module, student: Detector) -> None:
    """Raise ValueError/TypeError when ``teacher`` cannot teach ``student``.

    Both must be DAMO-YOLO detectors with neck features at the same strides, and (since the teacher's
    class scores are not distilled but its features encode its classes) the same class list.
    """
    if not isinstance(teacher, Detector) or not hasattr(teacher, "extract_features"):
        raise TypeError(f"The teacher must be a damo_pipeline Detector, got {type(teacher).__name__}.")
    if list(teacher.class_names) != list(student.class_names):
        raise ValueError(f"Teacher and student have different class lists ({len(teacher.class_names)} vs "
                         f"{len(student.class_names)} classes; first difference at "
                         f"{_first_difference(teacher.class_names, student.class_names)}). Fine-tune the teacher on "
                         "the student's dataset first, then distil.")
    t_strides, s_strides = tuple(teacher.head.strides), tuple(student.head.strides)
    if t_strides != s_strides:
        raise ValueError(f"Teacher feature strides {t_strides} differ from the student's {s_strides}.")


def _first_difference(a: Sequence[str], b: Sequence[str]) -> str:
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return f"index {i}: {x!r} vs {y!r}"
    return f"index {min(len(a), len(b))} (one list is longer)"


class FrozenTeacher:
    """Wraps a teacher detector: eval mode (BN running stats), no grads, fp16 on CUDA.

    Deliberately not an ``nn.Module``: it must not become part of the student's parameters,
    state_dict, ``train()`` switching or DDP wrapping.
    """

    def __init__(self, model: Detector, device: Optional[torch.device] = None, half: Optional[bool] = None) -> None:
        self.model = model
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.device = torch.device(device) if device is not None else next(model.parameters()).device
        self.half = self.device.type == "cuda" if half is None else half
        self.model.to(self.device)
        if self.half:
            self.model.half()
        self.model.eval()

    @property
    def channels(self) -> List[int]:
        return list(self.model.neck.out_channels)

    @torch.no_grad()
    def features(self, images: torch.Tensor) -> List[torch.Tensor]:
        """Neck features [N, C_l, H_l, W_l] of the teacher, float32, no graph."""
        self.model.eval()
        x = images.to(self.device, torch.float16 if self.half else torch.float32)
        return [f.float() for f in self.model.extract_features(x)]
