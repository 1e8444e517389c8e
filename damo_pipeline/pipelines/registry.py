"""Task registry and the ``pipeline(task, model=...)`` factory.

``"image-object-detection"`` is the value of ModelScope's ``Tasks.image_object_detection``; ``"object-detection"``
(the transformers name) is an alias. Later tasks join with :func:`register_pipeline`.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Type, Union

from ..models import Detector
from .base import Pipeline
from .object_detection import ObjectDetectionPipeline

logger = logging.getLogger(__name__)

__all__ = ["PIPELINE_REGISTRY", "TaskRegistry", "TaskSpec", "list_tasks", "pipeline", "register_pipeline"]


@dataclass(frozen=True)
class TaskSpec:
    """A task: its canonical name, implementation, aliases and the model used when none is given."""

    name: str
    pipeline_class: Type[Pipeline]
    aliases: Tuple[str, ...] = ()
    default_model: Optional[str] = None


def _normalise(task: str) -> str:
    return task.strip().lower().replace("_", "-")


@dataclass
class TaskRegistry:
    """Task name or alias -> :class:`TaskSpec`. Names are matched case-insensitively, ``_`` equal to ``-``."""

    _specs: Dict[str, TaskSpec] = field(default_factory=dict)
    _aliases: Dict[str, str] = field(default_factory=dict)

    def register(self, task: str, pipeline_class: Type[Pipeline], aliases: Sequence[str] = (),
                 default_model: Optional[str] = None) -> TaskSpec:
        """Add a task; re-registering a name or alias that belongs to another task raises ValueError."""
        if not (isinstance(pipeline_class, type) and issubclass(pipeline_class, Pipeline)):
            raise TypeError(f"pipeline_class must be a Pipeline subclass, got {pipeline_class!r}.")
        name = _normalise(task)
        spec = TaskSpec(name, pipeline_class, tuple(_normalise(a) for a in aliases), default_model)
        for key in (name, *spec.aliases):
            owner = self._aliases.get(key)
            if owner is not None and owner != name:
                raise ValueError(f"Task name {key!r} is already taken by task {owner!r}.")
        self._specs[name] = spec
        for key in (name, *spec.aliases):
            self._aliases[key] = name
        return spec

    def get(self, task: str) -> TaskSpec:
        """The spec of ``task`` (a name or alias).

        Raises:
            ValueError: unknown task; the message lists the known names and aliases.
        """
        if not isinstance(task, str):
            raise TypeError(f"task must be a str such as 'image-object-detection', got {type(task).__name__}.")
        name = self._aliases.get(_normalise(task))
        if name is None:
            raise ValueError(f"Unknown task {task!r}; known tasks: {self.names(with_aliases=True)}.")
        return self._specs[name]

    def names(self, with_aliases: bool = False) -> List[str]:
        """Registered task names (and their aliases), sorted."""
        return sorted(self._aliases if with_aliases else self._specs)


PIPELINE_REGISTRY = TaskRegistry()
PIPELINE_REGISTRY.register("image-object-detection", ObjectDetectionPipeline, aliases=("object-detection",),
                           default_model="damoyolo-s")


def register_pipeline(task: str, pipeline_class: Type[Pipeline], aliases: Sequence[str] = (),
                      default_model: Optional[str] = None) -> TaskSpec:
    """Make ``pipeline(task, ...)`` build ``pipeline_class`` (see :meth:`TaskRegistry.register`)."""
    return PIPELINE_REGISTRY.register(task, pipeline_class, aliases, default_model)


def list_tasks(with_aliases: bool = False) -> List[str]:
    """The task names ``pipeline()`` accepts."""
    return PIPELINE_REGISTRY.names(with_aliases)


def pipeline(task: str, model: Optional[Union[str, Path, Detector]] = None,
             checkpoint: Optional[Union[str, Path]] = None, **kwargs: Any) -> Pipeline:
    """Build the pipeline of ``task``.

    Example::

        detector = pipeline("image-object-detection", model="damoyolo-t", checkpoint="damoyolo_tinynasL20_T_436.pth")
        result = detector("street.jpg")  # {"scores", "labels", "boxes", "label_ids"}

    Args:
        task: ``"image-object-detection"`` or its alias ``"object-detection"`` (see :func:`list_tasks`).
        model: zoo id, hub id, hub-format folder, checkpoint file, or a built model; default the task's default
            model (``damoyolo-s`` for detection).
        checkpoint: weights for a zoo id (or for a built model still in training form).
        **kwargs: the task pipeline's options (device, score_threshold, ...; see its class docstring).

    Raises:
        ValueError: unknown task (the message lists the known ones) or a bad option.
        FileNotFoundError: no weights found for ``model`` (the message says where it looked).
    """
    spec = PIPELINE_REGISTRY.get(task)
    if model is None:
        if spec.default_model is None:
            raise ValueError(f"Task {spec.name!r} has no default model; pass model=...")
        logger.warning("No model given for task %r; using its default %r.", spec.name, spec.default_model)
        model = spec.default_model
    return spec.pipeline_class(model, checkpoint, **kwargs)
