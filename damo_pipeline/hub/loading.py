"""load_detector: turn a ``model=`` / ``checkpoint=`` pair into a Detector with its weights loaded.

This is the single entry point the pipeline and the recipes use. Supported here: a local checkpoint
file (architecture recognised from its keys), a zoo id with an explicit checkpoint, and a local
hub-format folder (``config.json`` + ``model.safetensors``).
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Optional, Union

from ..models import Detector, ModelConfig, build_model, list_models, load_checkpoint
from ..models.checkpoint import CHECKPOINT_SUFFIXES, build_from_checkpoint
from .errors import WeightsNotFoundError

logger = logging.getLogger(__name__)

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"

PathLike = Union[str, Path]


def load_folder(folder: PathLike) -> Detector:
    """Load a hub-format folder: ``config.json`` (with ``model_config``) and ``model.safetensors``."""
    folder = Path(folder)
    config_path, weights_path = folder / CONFIG_NAME, folder / WEIGHTS_NAME
    if not config_path.is_file():
        raise FileNotFoundError(f"{str(folder)!r} is not a damo_pipeline model folder: it has no {CONFIG_NAME}.")
    if not weights_path.is_file():
        raise FileNotFoundError(f"Model folder {str(folder)!r} has no {WEIGHTS_NAME}.")
    data = json.loads(config_path.read_text())
    if "model_config" not in data:
        raise ValueError(f"{str(config_path)!r} has no 'model_config' entry; it was not written by damo_pipeline.")
    model = build_model(ModelConfig.from_dict(data["model_config"]))
    return load_checkpoint(model, weights_path)


def load_detector(model: PathLike, checkpoint: Optional[PathLike] = None) -> Detector:
    """A Detector (training form, weights loaded) for ``model`` and optional ``checkpoint``.

    Args:
        model: a zoo id, a local hub-format folder, or a local checkpoint file (``.pth``, ``.pt``,
            ``.safetensors``) whose architecture and class count are recognised from its keys.
        checkpoint: weights for a zoo id (or a config ``.json``) given as ``model``.

    Raises:
        WeightsNotFoundError: no weights could be found; the message says where it looked.
        CheckpointMismatchError: the weights do not fit the architecture.
    """
    spec = str(model)
    path = Path(spec).expanduser()
    if checkpoint is not None:
        ckpt = Path(checkpoint).expanduser()
        if not ckpt.is_file():
            raise WeightsNotFoundError(spec, [(f"checkpoint {str(checkpoint)!r}", "no such file")])
        return load_checkpoint(build_model(spec), ckpt)
    if path.is_dir():
        return load_folder(path)
    if path.suffix in CHECKPOINT_SUFFIXES:
        if not path.is_file():
            raise WeightsNotFoundError(spec, [(f"local file {spec!r}", "no such file")])
        return build_from_checkpoint(path)
    if spec.lower() in list_models():
        raise WeightsNotFoundError(spec, [("official release", "downloading is not supported yet")])
    raise WeightsNotFoundError(spec, [(f"local path {spec!r}", "not a folder or checkpoint file"),
                                      ("zoo ids", f"not one of {list_models()}")])
