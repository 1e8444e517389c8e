"""Turn what a user has (a training run folder, a checkpoint, a hub folder) into a hub folder.

* A hub folder (``config.json`` with ``model_config``) is used as it is.
* A training run folder: its ``hub/`` sub-folder when the trainer wrote one; otherwise its best
  checkpoint (``best.pt``, else ``last.pt``, else the only checkpoint), with the metrics of the best
  evaluated epoch from ``metrics.jsonl`` and the recipe settings stored in the checkpoint.
* A checkpoint file: a trainer checkpoint (``model`` + ``model_config`` + ``class_names``) or any
  state dict whose architecture is recognised from its keys (official ``.pth`` files included).
Checkpoints are read with ``torch.load(weights_only=True)`` or safetensors only.
"""
from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

from damo_pipeline.hub import is_hub_folder, save_pretrained
from damo_pipeline.models import Detector, ModelConfig, build_model, load_checkpoint
from damo_pipeline.models.checkpoint import CHECKPOINT_SUFFIXES, build_from_checkpoint, unwrap_state_dict

logger = logging.getLogger(__name__)

PathLike = Union[str, Path]
RUN_CHECKPOINTS = ("best.pt", "best.pth", "best.safetensors", "last.pt", "last.pth", "latest_ckpt.pth")
TRAINING_KEYS = ("epochs", "batch_size", "lr", "base_lr", "optimizer", "img_size", "ema", "amp", "seed",
                 "warmup_epochs", "weight_decay", "momentum", "recipe", "teacher", "distill", "augment",
                 "mosaic", "mixup", "accumulate", "no_aug_epochs", "scheduler")
DATASET_KEYS = ("dataset", "data", "train_ann", "data_dir", "train_images")


@dataclass
class HubSource:
    """A model ready to be written in the hub format, and what its card should say."""

    model: Detector
    metrics: Dict[str, float] = field(default_factory=dict)
    dataset: Optional[str] = None
    training: Dict[str, Any] = field(default_factory=dict)
    origin: str = ""


def _read_checkpoint(path: Path) -> Any:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path), device="cpu")
    import pickle

    import torch

    try:
        return torch.load(str(path), map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError) as e:
        raise ValueError(f"{str(path)!r} could not be read as a weights-only checkpoint: {e}") from e


def _dataset_name(value: Any) -> Optional[str]:
    if isinstance(value, dict):
        for key in ("name", "train", "path", "root"):
            if key in value:
                return _dataset_name(value[key])
        return None
    if not isinstance(value, str) or not value:
        return None
    path = Path(value)
    if path.suffix == ".json":  # an annotation file: name the dataset folder
        parts = [p for p in path.parts[:-1] if p not in ("annotations", "labels", "train", "val", ".", "..")]
        return parts[-1] if parts else path.stem
    return path.name if ("/" in value or "\\" in value) else value


def _training_settings(train_config: Dict[str, Any]) -> Dict[str, Any]:
    settings = {k: train_config[k] for k in TRAINING_KEYS if k in train_config
                and isinstance(train_config[k], (int, float, str, bool, list))}
    return settings


def load_checkpoint_source(path: PathLike, class_names: Optional[Sequence[str]] = None) -> HubSource:
    """A :class:`HubSource` from one checkpoint file (trainer checkpoint or plain/official state dict).

    Raises:
        FileNotFoundError: no such file. ValueError: unreadable, or an architecture we cannot recognise.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Checkpoint {str(path)!r} does not exist.")
    obj = _read_checkpoint(path)
    state_dict = unwrap_state_dict(obj, source=str(path))
    training: Dict[str, Any] = {}
    dataset = None
    if isinstance(obj, dict) and isinstance(obj.get("model_config"), dict):
        config = ModelConfig.from_dict(obj["model_config"])
        names = list(class_names) if class_names else obj.get("class_names")
        if names and list(names) != list(config.class_names):
            config = config.replace(class_names=list(names))
        model = load_checkpoint(build_model(config), state_dict)
        train_config = obj.get("train_config") if isinstance(obj.get("train_config"), dict) else {}
        training = _training_settings(train_config)
        if isinstance(obj.get("epoch"), int):
            training.setdefault("epochs trained", obj["epoch"])
        for key in DATASET_KEYS:
            dataset = dataset or _dataset_name(train_config.get(key))
    else:
        model = build_from_checkpoint(state_dict, class_names=list(class_names) if class_names else None)
    return HubSource(model=model, training=training, dataset=dataset, origin=str(path))


def best_metrics(run_dir: Path) -> Dict[str, float]:
    """The AP-style metrics of the best evaluated epoch in ``metrics.jsonl`` (or ``metrics.json``)."""
    records: List[Dict[str, Any]] = []
    jsonl = run_dir / "metrics.jsonl"
    if jsonl.is_file():
        for line in jsonl.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict):
                records.append(record)
    single = run_dir / "metrics.json"
    if single.is_file():
        data = json.loads(single.read_text(encoding="utf-8"))
        records.append(data.get("metrics", data) if isinstance(data, dict) else {})

    def ap_values(record: Dict[str, Any]) -> Dict[str, float]:
        return {k: float(v) for k, v in record.items() if isinstance(v, (int, float)) and not isinstance(v, bool)
                and k.lower().lstrip("m").startswith("ap") and math.isfinite(float(v))}

    evaluated = [r for r in records if ap_values(r)]
    if not evaluated:
        return {}
    main_key = next((k for k in ("AP", "mAP", "ap", "map") if k in evaluated[-1]), sorted(ap_values(evaluated[-1]))[0])
    best = max(evaluated, key=lambda r: float(r.get(main_key, float("-inf"))))
    return ap_values(best)


def load_run_source(run_dir: PathLike, class_names: Optional[Sequence[str]] = None) -> HubSource:
    """A :class:`HubSource` from a training run folder (see the module docstring).

    Raises:
        FileNotFoundError: the folder has no checkpoint.
    """
    run_dir = Path(run_dir)
    candidates = [run_dir / name for name in RUN_CHECKPOINTS if (run_dir / name).is_file()]
    if not candidates:
        candidates = sorted(p for p in run_dir.iterdir() if p.is_file() and p.suffix in CHECKPOINT_SUFFIXES)
    if not candidates:
        raise FileNotFoundError(f"Run folder {str(run_dir)!r} has no hub/ folder and no checkpoint "
                                f"({', '.join(RUN_CHECKPOINTS)} or any {', '.join(CHECKPOINT_SUFFIXES)} file).")
    source = load_checkpoint_source(candidates[0], class_names)
    source.metrics = best_metrics(run_dir)
    source.origin = f"{run_dir} ({candidates[0].name})"
    return source


def build_hub_folder(source: PathLike, out: PathLike, *, class_names: Optional[Sequence[str]] = None,
                     metrics: Optional[Dict[str, float]] = None, dataset: Optional[str] = None,
                     base_model: Optional[str] = None, repo_id: Optional[str] = None,
                     compute_profile: bool = True) -> Path:
    """The hub folder for ``source``: ``source`` itself when it already is one, else a new folder ``out``.

    Args:
        source: a hub folder, a training run folder or a checkpoint file.
        out: where to write the hub folder when one has to be built.
        class_names / metrics / dataset / base_model: override what the source records.
        repo_id: shown in the card's usage snippet.
        compute_profile: measure params and GFLOPs for the card.

    Raises:
        FileNotFoundError: ``source`` does not exist or holds no checkpoint.
    """
    source = Path(source)
    if source.is_dir() and is_hub_folder(source):
        return source
    if source.is_dir() and is_hub_folder(source / "hub"):
        return source / "hub"
    if source.is_dir():
        loaded = load_run_source(source, class_names)
    elif source.is_file():
        loaded = load_checkpoint_source(source, class_names)
    else:
        raise FileNotFoundError(f"SOURCE {str(source)!r} does not exist; give a training run folder, a checkpoint "
                                f"file or a hub folder.")
    logger.info("Building a hub folder from %s", loaded.origin)
    return save_pretrained(loaded.model, out, metrics=metrics if metrics is not None else loaded.metrics,
                           dataset=dataset or loaded.dataset, base_model=base_model, training=loaded.training,
                           repo_id=repo_id, compute_profile=compute_profile)
