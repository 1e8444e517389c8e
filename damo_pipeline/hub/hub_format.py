"""The project's hub format: one folder (one model repo) that both Hugging Face and ModelScope accept.

Files:

* ``config.json``: ``model_config`` (the full :class:`~damo_pipeline.models.ModelConfig`, so NAS results
  load too), ``architecture``, ``num_classes``, ``class_names``, ``img_size``, the default thresholds,
  the input convention, ``library_name``/``library_version``/``format_version`` and the card inputs.
* ``model.safetensors``: the training-form state dict (fine-tunable; the pipeline fuses on load).
  Absent for an architecture-only folder (``has_weights`` false).
* ``README.md``: the model card (:mod:`damo_pipeline.hub.card`).
* ``configuration.json``: what ModelScope needs (framework, task, model type).

Every file is written to a temporary name and moved into place with :func:`os.replace`; ``config.json``
is written last, so a folder with a ``config.json`` always has the weights it describes.
"""
from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Union

from ..models import Detector, ModelConfig, build_model, list_models, load_checkpoint
from ..models.layers import RepConv
from ..version import __version__
from .card import LIBRARY_NAME, MODELSCOPE_TASK, CardContext, build_model_card
from .errors import WeightsNotFoundError

logger = logging.getLogger(__name__)

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
CARD_NAME = "README.md"
MODELSCOPE_CONFIG_NAME = "configuration.json"
FORMAT_VERSION = 1

PathLike = Union[str, Path]


def _atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then move it onto ``path``."""
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=str(path.parent))
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    _atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def hub_config(config: ModelConfig, card: CardContext, extra: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """The ``config.json`` dict of a hub folder."""
    data: Dict[str, Any] = {
        "library_name": LIBRARY_NAME,
        "library_version": __version__,
        "format_version": FORMAT_VERSION,
        "architecture": config.name,
        "zoo_architecture": config.name in list_models(),
        "num_classes": config.num_classes,
        "class_names": list(config.class_names),
        "img_size": config.img_size,
        "score_threshold": config.score_threshold,
        "iou_threshold": config.iou_threshold,
        "max_detections": config.max_detections,
        "resize": config.resize,
        "input": {"color": "RGB", "range": [0, 255], "mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0],
                  "layout": "NCHW", "size_multiple": 32},
        "output": {"scores": "sigmoid [N, A, K]", "boxes": "xyxy input pixels [N, A, 4]", "nms": False},
        "has_weights": card.has_weights,
        "weights": WEIGHTS_NAME if card.has_weights else None,
        "weights_form": "training",
        "model_config": config.to_dict(),
        "card": card.to_dict(),
    }
    if extra:
        data.update(extra)
    return data


def modelscope_configuration(config: ModelConfig) -> Dict[str, Any]:
    """The ``configuration.json`` ModelScope reads (no Python is referenced or needed)."""
    return {
        "framework": "pytorch",
        "task": MODELSCOPE_TASK,
        "model": {"type": LIBRARY_NAME, "architecture": config.name, "weights": WEIGHTS_NAME,
                  "num_classes": config.num_classes},
        "pipeline": {"type": f"{LIBRARY_NAME}-object-detection"},
        "dataset": {"class_names": list(config.class_names)},
        "library": {"name": LIBRARY_NAME, "version": __version__,
                    "usage": "damo_pipeline.pipeline('image-object-detection', model=<this folder or repo id>)"},
    }


def _check_training_form(model: Detector) -> None:
    if model.is_fused or any(isinstance(m, RepConv) and m.is_fused for m in model.modules()):
        raise ValueError("The model has been fused (model.fuse()); its weights no longer fit the training form the "
                         "hub format stores. Save the model before fusing, or reload it and save that.")


def save_pretrained(model: Union[Detector, ModelConfig], folder: PathLike, *,
                    metrics: Optional[Dict[str, float]] = None, dataset: Optional[str] = None,
                    base_model: Optional[str] = None, training: Optional[Dict[str, Any]] = None,
                    extra_card_sections: Optional[Dict[str, str]] = None,
                    official: Optional[Dict[str, Any]] = None, repo_id: Optional[str] = None,
                    description: Optional[str] = None, compute_profile: bool = True,
                    metrics_split: Optional[str] = None, license: Optional[str] = None,
                    title: Optional[str] = None) -> Path:
    """Write ``model`` as a hub folder (``config.json``, ``model.safetensors``, ``README.md``, ``configuration.json``).

    Args:
        model: a :class:`Detector` in training form (not fused), or a :class:`ModelConfig` for an
            architecture-only folder (config and card, no weights; e.g. a NAS result).
        folder: output folder; created if needed. Other files in it are left alone.
        metrics: evaluation results, name -> number, e.g. ``{"AP": 0.436, "AP50": 0.594}``, shown as given
            (fractions as the evaluator reports them, or percent as the official zoo); they go into the
            card's table and ``model-index``.
        dataset: dataset name or hub dataset id the model was trained and evaluated on.
        base_model: the weights training started from (zoo id like ``damoyolo-t`` or a hub id).
        training: recipe settings for the card and ``config.json`` (epochs, batch size, ``teacher``, ...).
        extra_card_sections: more Markdown sections for the card, title -> body.
        official: official release figures (see :class:`CardContext`), used for converted zoo weights.
        repo_id: the ``org/name`` the folder will be published as (shown in the usage snippet).
        description: the card's opening paragraph.
        compute_profile: measure params and GFLOPs with :func:`damo_pipeline.models.profile` for the card.
        metrics_split: the dataset split the metrics come from.
        license: licence id for the hub metadata (default ``apache-2.0``, as DAMO-YOLO).
        title: the card's heading (default from the repo id or architecture).

    Returns:
        ``folder`` as a :class:`Path`.

    Raises:
        TypeError: ``model`` is neither a Detector nor a ModelConfig.
        ValueError: the model is fused, or a metric is not a finite number.
    """
    if isinstance(model, Detector):
        _check_training_form(model)
        config, has_weights = model.config, True
    elif isinstance(model, ModelConfig):
        config, has_weights = model, False
    else:
        raise TypeError(f"save_pretrained needs a Detector or a ModelConfig, got {type(model).__name__}.")
    size = None
    if compute_profile:
        from ..models import profile

        measured = profile(model if has_weights else build_model(config))
        size = {"params_m": round(measured.params_m, 3), "gflops": round(measured.gflops, 3)}
    card = CardContext(model_config=config.to_dict(), has_weights=has_weights, repo_id=repo_id,
                       metrics=dict(metrics or {}), dataset=dataset, base_model=base_model,
                       training=dict(training or {}), extra_sections=dict(extra_card_sections or {}),
                       official=dict(official) if official else None, size=size, description=description,
                       metrics_split=metrics_split, title=title, **({"license": license} if license else {}))
    rendered = str(build_model_card(card))  # render before writing anything: bad inputs leave no trace
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if has_weights:
        from safetensors.torch import save_file

        tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
        _atomic_write(folder / WEIGHTS_NAME, lambda tmp: save_file(
            tensors, str(tmp), metadata={"format": "pt", "library": LIBRARY_NAME, "architecture": config.name}))
    else:
        (folder / WEIGHTS_NAME).unlink(missing_ok=True)
    atomic_write_text(folder / CARD_NAME, rendered)
    atomic_write_text(folder / MODELSCOPE_CONFIG_NAME, json.dumps(modelscope_configuration(config), indent=2) + "\n")
    atomic_write_text(folder / CONFIG_NAME, json.dumps(hub_config(config, card), indent=2) + "\n")
    logger.info("Saved %s (%s) to %s", config.name, "weights" if has_weights else "architecture only", folder)
    return folder


def read_hub_config(folder: PathLike) -> Dict[str, Any]:
    """The ``config.json`` of a hub folder.

    Raises:
        FileNotFoundError: no ``config.json``.
        ValueError: it is not JSON or has no ``model_config`` (not written by damo_pipeline).
    """
    path = Path(folder) / CONFIG_NAME
    if not path.is_file():
        raise FileNotFoundError(f"{str(folder)!r} is not a damo_pipeline model folder: it has no {CONFIG_NAME}.")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{str(path)!r} is not valid JSON: {e}") from e
    if not isinstance(data, dict) or not isinstance(data.get("model_config"), dict):
        raise ValueError(f"{str(path)!r} has no 'model_config' entry; it was not written by damo_pipeline.")
    return data


def is_hub_folder(folder: PathLike) -> bool:
    """True when ``folder`` has a damo_pipeline ``config.json``."""
    try:
        read_hub_config(folder)
    except (FileNotFoundError, ValueError):
        return False
    return True


def load_folder(folder: PathLike) -> Detector:
    """Load a hub folder: build the architecture from ``config.json`` and load ``model.safetensors`` strictly.

    Returns:
        The :class:`Detector` in training form, in eval mode.

    Raises:
        FileNotFoundError: no ``config.json``; :class:`WeightsNotFoundError` when the folder has no weights.
        ValueError: a bad ``config.json``; ``CheckpointMismatchError`` when the weights do not fit.
    """
    folder = Path(folder)
    data = read_hub_config(folder)
    weights = folder / (data.get("weights") or WEIGHTS_NAME)
    if not weights.is_file():
        why = ("it describes an architecture only (has_weights: false); build it untrained with "
               f"build_model('{folder / CONFIG_NAME}')") if data.get("has_weights") is False else f"no {weights.name}"
        raise WeightsNotFoundError(str(folder), [(f"model folder {str(folder)!r}", why)])
    model = build_model(ModelConfig.from_dict(data["model_config"]))
    load_checkpoint(model, weights)
    return model.eval()


def render_card(folder: PathLike, repo_id: Optional[str] = None) -> str:
    """Render a hub folder's card again from the inputs stored in its ``config.json`` (with ``repo_id``)."""
    data = read_hub_config(folder)
    card = data.get("card")
    context = CardContext.from_dict(card) if isinstance(card, dict) else CardContext(
        model_config=data["model_config"], has_weights=(Path(folder) / WEIGHTS_NAME).is_file())
    if repo_id is not None:
        context.repo_id = repo_id
    return str(build_model_card(context))
