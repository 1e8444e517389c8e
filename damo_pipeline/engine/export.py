"""From a training run to a usable model: read run checkpoints, write the hub folder.

``load_trained_model`` accepts a run folder (its ``best.pt``, else ``last.pt``), a training checkpoint,
or anything :func:`damo_pipeline.hub.load_detector` loads. ``export_hub_folder`` writes the best EMA
weights of a run as a hub folder (``config.json``, ``model.safetensors``, model card with the measured
metrics) that ``load_detector`` and ``pipeline(model=...)`` load.
"""
from __future__ import annotations

import logging
import pickle
from pathlib import Path
from typing import Any, Dict, Optional, Union

import torch

from ..models import Detector, ModelConfig, build_model
from .checkpoint import CHECKPOINT_FORMAT, load_training_checkpoint

logger = logging.getLogger(__name__)

__all__ = ["export_hub_folder", "find_run_checkpoint", "is_training_checkpoint", "load_trained_model"]

PathLike = Union[str, Path]


def find_run_checkpoint(run_dir: PathLike) -> Path:
    """``best.pt`` of a run folder, else ``last.pt``.

    Raises:
        FileNotFoundError: neither exists.
    """
    run_dir = Path(run_dir)
    for name in ("best.pt", "last.pt"):
        if (run_dir / name).is_file():
            return run_dir / name
    raise FileNotFoundError(f"{str(run_dir)!r} holds neither best.pt nor last.pt; is it a training run folder?")


def is_training_checkpoint(path: PathLike) -> bool:
    """True for a checkpoint file written by :class:`~damo_pipeline.engine.Trainer`."""
    path = Path(path)
    if not path.is_file() or path.suffix not in (".pt", ".pth"):
        return False
    try:
        ckpt = torch.load(str(path), map_location="cpu", weights_only=True, mmap=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError):
        return False  # unreadable or foreign: not ours (the caller's loader reports why)
    return isinstance(ckpt, dict) and ckpt.get("format") == CHECKPOINT_FORMAT


def _model_from_checkpoint(ckpt: Dict[str, Any]) -> Detector:
    model = build_model(ModelConfig.from_dict(ckpt["model_config"]))
    model.load_state_dict(ckpt["model"], strict=True)
    return model.eval()


def load_trained_model(spec: PathLike, checkpoint: Optional[PathLike] = None) -> Detector:
    """A detector (eval mode, training form) from a run folder, a training checkpoint or a hub spec.

    Training checkpoints give the evaluated weights (the EMA) with the run's config (input size, class
    names). Anything else goes to :func:`damo_pipeline.hub.load_detector` (``checkpoint`` too).
    """
    path = Path(str(spec)).expanduser()
    if checkpoint is None and path.is_dir() and ((path / "best.pt").is_file() or (path / "last.pt").is_file()) \
            and not (path / "config.json").is_file():
        path = find_run_checkpoint(path)
    if checkpoint is None and is_training_checkpoint(path):
        return _model_from_checkpoint(load_training_checkpoint(path))
    from ..hub import load_detector

    return load_detector(str(spec), checkpoint)


def export_hub_folder(checkpoint: PathLike, folder: PathLike, *, dataset: Optional[str] = None,
                      base_model: Optional[str] = None, training: Optional[Dict[str, Any]] = None,
                      compute_profile: bool = True) -> Path:
    """Write a run checkpoint's evaluated weights as a hub folder with a model card.

    The card's metrics are the checkpoint's best evaluation (COCO AP in percent, as the zoo reports
    it), computed with pycocotools on the validation split.

    Args:
        checkpoint: ``best.pt`` (or ``last.pt``) of a run.
        folder: the hub folder to write (created; written atomically file by file).
        dataset: dataset name for the card.
        base_model: the weights the run started from (None: trained from scratch).
        training: recipe settings for the card.
        compute_profile: measure params/GFLOPs for the card.

    Returns:
        ``folder``.
    """
    from ..hub import save_pretrained

    ckpt = load_training_checkpoint(checkpoint)
    model = _model_from_checkpoint(ckpt)
    result = ckpt.get("best_result") or {}
    metrics = {}
    mapping = {"AP": "map", "AP50": "map50", "AP75": "map75", "APs": "map_small", "APm": "map_medium",
               "APl": "map_large"}
    for ours, theirs in mapping.items():
        value = (result.get("metrics") or {}).get(ours)
        if value is not None and value >= 0:
            metrics[theirs] = round(100.0 * float(value), 2)
    sections = {}
    per_class = result.get("per_class") or {}
    if per_class:
        rows = ["| class | AP | AP50 |", "|---|---|---|"]
        for name, ap in per_class.items():
            ap50 = (result.get("per_class_ap50") or {}).get(name)
            rows.append(f"| {name} | {'n/a' if ap is None else f'{100 * ap:.1f}'} | "
                        f"{'n/a' if ap50 is None else f'{100 * ap50:.1f}'} |")
        sections["Per-class AP (validation split, pycocotools)"] = "\n".join(rows)
    info = dict(training or {})
    if ckpt.get("best_epoch"):
        info.setdefault("best_epoch", int(ckpt["best_epoch"]))
    return save_pretrained(model, folder, metrics=metrics or None, dataset=dataset, base_model=base_model,
                           training=info, extra_card_sections=sections or None,
                           metrics_split="val" if metrics else None, compute_profile=compute_profile)
