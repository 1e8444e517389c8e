"""Model configuration as data: a dataclass that round-trips through JSON."""
from __future__ import annotations

import copy
import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Union
from ..config_dict import check_config_dict

RESIZE_MODES = ("stretch", "letterbox")


@dataclass
class ModelConfig:
    """Everything needed to build a detector and run it the official way.

    Attributes:
        name: zoo id (``damoyolo-t``) or a free name for custom configs (NAS results).
        img_size: native square input size (640, or 416 for Nano); multiples of 32.
        backbone / neck / head: component configs, each a dict with ``type`` plus constructor arguments.
            The head's ``num_classes`` is filled from ``num_classes``.
        num_classes: number of classes K.
        class_names: K names, label index i -> ``class_names[i]``.
        score_threshold / iou_threshold / max_detections: official post-processing defaults.
        resize: ``stretch`` (official: resize to img_size x img_size ignoring aspect) or ``letterbox``.
    """

    name: str
    img_size: int
    backbone: Dict[str, Any]
    neck: Dict[str, Any]
    head: Dict[str, Any]
    num_classes: int = 80
    class_names: List[str] = field(default_factory=list)
    score_threshold: float = 0.05
    iou_threshold: float = 0.7
    max_detections: int = 500
    resize: str = "stretch"

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ValueError naming the bad field when the config cannot describe a detector."""
        if not isinstance(self.img_size, int) or self.img_size <= 0 or self.img_size % 32:
            raise ValueError(f"img_size must be a positive multiple of 32, got {self.img_size!r}.")
        if not isinstance(self.num_classes, int) or self.num_classes < 1:
            raise ValueError(f"num_classes must be a positive int, got {self.num_classes!r}.")
        if not self.class_names:
            self.class_names = [f"class_{i}" for i in range(self.num_classes)]
        self.class_names = [str(n) for n in self.class_names]
        if len(self.class_names) != self.num_classes:
            raise ValueError(f"class_names has {len(self.class_names)} names but num_classes is {self.num_classes}.")
        for part in ("backbone", "neck", "head"):
            value = getattr(self, part)
            if not isinstance(value, dict) or "type" not in value:
                raise ValueError(f"config.{part} must be a dict with a 'type' key, got {value!r}.")
        if self.resize not in RESIZE_MODES:
            raise ValueError(f"resize must be one of {RESIZE_MODES}, got {self.resize!r}.")
        if not 0.0 <= self.score_threshold <= 1.0 or not 0.0 <= self.iou_threshold <= 1.0:
            raise ValueError("score_threshold and iou_threshold must lie in [0, 1].")

    def to_dict(self) -> Dict[str, Any]:
        """A deep-copied, JSON-serialisable dict."""
        return copy.deepcopy(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "ModelConfig":
        """Build from a dict such as :meth:`to_dict` returns; unknown keys raise ValueError."""
        check_config_dict(cls, data, "model config")
        missing = sorted(f.name for f in dataclasses.fields(cls)
                         if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
                         and f.name not in data)
        if missing:
            raise ValueError(f"Model config lacks required keys {missing}.")
        return cls(**copy.deepcopy(data))

    def to_json(self, path: Optional[Union[str, Path]] = None) -> str:
        """Serialise to JSON text, and write it to ``path`` when given."""
        text = json.dumps(self.to_dict(), indent=2)
        if path is not None:
            Path(path).write_text(text + "\n")
        return text

    @classmethod
    def from_json(cls, path: Union[str, Path]) -> "ModelConfig":
        """Read a config written by :meth:`to_json` (or a hub ``config.json`` holding ``model_config``)."""
        data = json.loads(Path(path).read_text())
        if "model_config" in data and isinstance(data["model_config"], dict):
            data = data["model_config"]
        return cls.from_dict(data)

    def replace(self, **overrides: Any) -> "ModelConfig":
        """A copy with fields replaced; dict fields (backbone/neck/head) are merged key by key."""
        data = self.to_dict()
        known = set(data)
        for key, value in overrides.items():
            if key not in known:
                raise ValueError(f"Unknown model config field {key!r}; known: {sorted(known)}.")
            if isinstance(data[key], dict) and isinstance(value, dict):
                data[key].update(copy.deepcopy(value))
            else:
                data[key] = copy.deepcopy(value)
        if "num_classes" in overrides and "class_names" not in overrides:
            if overrides["num_classes"] != len(self.class_names):
                data["class_names"] = []
        if "class_names" in overrides and "num_classes" not in overrides:
            data["num_classes"] = len(data["class_names"])
        return ModelConfig.from_dict(data)
