"""build_model: one entry point from a zoo id, a config dict or a config file to a Detector."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Optional, Sequence, Union

from ._registry import get_model_config
from .config import ModelConfig
from .detector import Detector

ModelSpec = Union[str, Path, Dict[str, Any], ModelConfig]


def resolve_config(model: ModelSpec, num_classes: Optional[int] = None,
                   class_names: Optional[Sequence[str]] = None, **overrides: Any) -> ModelConfig:
    """The :class:`ModelConfig` that :func:`build_model` would build (see there for the arguments)."""
    if isinstance(model, ModelConfig):
        config = ModelConfig.from_dict(model.to_dict())
    elif isinstance(model, dict):
        config = ModelConfig.from_dict(model)
    elif isinstance(model, (str, Path)):
        path = Path(model)
        if str(model).endswith(".json"):
            if not path.is_file():
                raise FileNotFoundError(f"Model config file {str(model)!r} does not exist.")
            config = ModelConfig.from_json(path)
        else:
            config = get_model_config(str(model))
    else:
        raise TypeError(f"model must be a zoo id, a config dict, a ModelConfig or a .json path; "
                        f"got {type(model).__name__}.")
    if class_names is not None:
        overrides["class_names"] = list(class_names)
        if num_classes is not None and num_classes != len(class_names):
            raise ValueError(f"num_classes={num_classes} disagrees with {len(class_names)} class_names.")
    if num_classes is not None:
        overrides["num_classes"] = num_classes
    return config.replace(**overrides) if overrides else config


def build_model(model: ModelSpec, num_classes: Optional[int] = None, class_names: Optional[Sequence[str]] = None,
                **overrides: Any) -> Detector:
    """Build a DAMO-YOLO detector in training form (randomly initialised; load weights separately).

    Args:
        model: a zoo id (``"damoyolo-t"``, see :func:`list_models`), a config dict or :class:`ModelConfig`
            (for example a NAS result), or the path of a ``.json`` config.
        num_classes: number of classes; default: the config's (80 for the zoo). Without ``class_names``
            a different count gets placeholder names ``class_0 ...``.
        class_names: class names (sets ``num_classes`` too).
        **overrides: any other :class:`ModelConfig` field; ``backbone``/``neck``/``head`` dicts are merged
            into the config's, e.g. ``head={"legacy": True}``.

    Raises:
        ValueError: unknown zoo id (the message lists them) or an inconsistent config.
    """
    return Detector(resolve_config(model, num_classes, class_names, **overrides))
