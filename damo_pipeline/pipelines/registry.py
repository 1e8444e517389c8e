"""Task registry and the ``pipeline(task, model=..., engine=...)`` factory.

``"image-object-detection"`` is the value of ModelScope's ``Tasks.image_object_detection``; ``"object-detection"``
(the transformers name) is an alias. Later tasks join with :func:`register_pipeline`.

A task has one pipeline class per engine (``"torch"``, ``"onnxruntime"``, ``"tensorrt"``), named as
``"module:Class"`` strings and imported on use: ``pipeline(..., engine="onnxruntime")`` with a ``.onnx`` model
never imports torch.
"""
from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Sequence, Tuple, Type, Union

from .base import BasePipeline

if TYPE_CHECKING:
    from ..models import Detector

logger = logging.getLogger(__name__)

__all__ = ["PIPELINE_REGISTRY", "TaskRegistry", "TaskSpec", "list_tasks", "pipeline", "register_pipeline"]


@dataclass(frozen=True)
class TaskSpec:
    """A task: its canonical name, its implementation per engine, aliases and the model used when none is given.

    ``engines`` maps an engine name to a pipeline class or a ``"module:Class"`` string (imported on use).
    """

    name: str
    engines: Mapping[str, Union[str, Type[BasePipeline]]]
    aliases: Tuple[str, ...] = ()
    default_model: Optional[str] = None

    @property
    def pipeline_class(self) -> Type[BasePipeline]:
        """The torch engine's class (or the only engine's)."""
        return self.engine_class("torch" if "torch" in self.engines else next(iter(self.engines)))

    def engine_class(self, engine: str) -> Type[BasePipeline]:
        """The class that runs this task with ``engine`` (ValueError listing the known engines)."""
        if engine not in self.engines:
            raise ValueError(f"Task {self.name!r} has no engine {engine!r}; known engines: {sorted(self.engines)}.")
        target = self.engines[engine]
        if isinstance(target, str):
            module_name, class_name = target.split(":")
            target = getattr(importlib.import_module(module_name), class_name)
        if not (isinstance(target, type) and issubclass(target, BasePipeline)):
            raise TypeError(f"Engine {engine!r} of task {self.name!r} is not a pipeline class: {target!r}.")
        return target


def _normalise(task: str) -> str:
    return task.strip().lower().replace("_", "-")


@dataclass
class TaskRegistry:
    """Task name or alias -> :class:`TaskSpec`. Names are matched case-insensitively, ``_`` equal to ``-``."""

    _specs: Dict[str, TaskSpec] = field(default_factory=dict)
    _aliases: Dict[str, str] = field(default_factory=dict)

    def register(self, task: str, pipeline_class: Union[str, Type[BasePipeline]], aliases: Sequence[str] = (),
                 default_model: Optional[str] = None,
                 engines: Optional[Mapping[str, Union[str, Type[BasePipeline]]]] = None) -> TaskSpec:
        """Add a task (``pipeline_class`` is its torch engine; ``engines`` adds others); re-registering a name or
        alias that belongs to another task raises ValueError."""
        for target in [pipeline_class, *(engines or {}).values()]:
            if not (isinstance(target, str) and target.count(":") == 1) and not (
                    isinstance(target, type) and issubclass(target, BasePipeline)):
                raise TypeError(f"pipeline_class must be a Pipeline subclass or a 'module:Class' string, "
                                f"got {target!r}.")
        name = _normalise(task)
        spec = TaskSpec(name, {"torch": pipeline_class, **(engines or {})}, tuple(_normalise(a) for a in aliases),
                        default_model)
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
_GRAPH_DETECTION = "damo_pipeline.pipelines.graph_detection:GraphObjectDetectionPipeline"
PIPELINE_REGISTRY.register("image-object-detection",
                           "damo_pipeline.pipelines.object_detection:ObjectDetectionPipeline",
                           aliases=("object-detection",), default_model="damoyolo-s",
                           engines={"onnxruntime": _GRAPH_DETECTION, "tensorrt": _GRAPH_DETECTION})


def register_pipeline(task: str, pipeline_class: Union[str, Type[BasePipeline]], aliases: Sequence[str] = (),
                      default_model: Optional[str] = None,
                      engines: Optional[Mapping[str, Union[str, Type[BasePipeline]]]] = None) -> TaskSpec:
    """Make ``pipeline(task, ...)`` build ``pipeline_class`` (see :meth:`TaskRegistry.register`)."""
    return PIPELINE_REGISTRY.register(task, pipeline_class, aliases, default_model, engines)


def list_tasks(with_aliases: bool = False) -> List[str]:
    """The task names ``pipeline()`` accepts."""
    return PIPELINE_REGISTRY.names(with_aliases)


def pipeline(task: str, model: Optional[Union[str, Path, "Detector"]] = None,
             checkpoint: Optional[Union[str, Path]] = None, engine: Optional[str] = None,
             **kwargs: Any) -> BasePipeline:
    """Build the pipeline of ``task``.

    Example::

        detector = pipeline("image-object-detection", model="damoyolo-t", checkpoint="damoyolo_tinynasL20_T_436.pth")
        result = detector("street.jpg")  # {"scores", "labels", "boxes", "label_ids"}

    Args:
        task: ``"image-object-detection"`` or its alias ``"object-detection"`` (see :func:`list_tasks`).
        model: zoo id, hub id, hub-format folder, checkpoint file, or a built model; default the task's default
            model (``damoyolo-s`` for detection).
        checkpoint: weights for a zoo id (or for a built model still in training form).
        engine: ``"torch"`` (default), ``"onnxruntime"`` (default for a ``.onnx`` model: the exported graph on the
            CPU, without importing torch; other models are exported once and cached) or ``"tensorrt"`` (NVIDIA).
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
    if engine is None:
        engine = "onnxruntime" if str(model).lower().endswith(".onnx") else "torch"
    if not isinstance(engine, str):
        raise TypeError(f"engine must be a str such as 'torch' or 'onnxruntime', got {type(engine).__name__}.")
    cls = spec.engine_class(engine)
    if engine != "torch":  # one class may serve several graph engines: tell it which
        kwargs["engine"] = engine
    return cls(model, checkpoint, **kwargs)
