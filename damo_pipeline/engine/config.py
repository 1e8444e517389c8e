"""TrainConfig: every value of the official DAMO-YOLO training recipe as data.

Defaults are the official ones (``spec/training.md`` §1, §4–§9; upstream ``damo/config/base.py``):
300 epochs, global batch 256, SGD (momentum 0.9, Nesterov, weight decay 5e-4) with a learning rate of
0.01 per 64 images, 5 warm-up epochs (quadratic), cosine decay to 5 % of the peak, the last 16 epochs
without mosaic/mixup at the final learning rate, EMA (0.9998 with a 2000-iteration ramp), evaluation
every 10 epochs and every epoch in the no-augmentation phase. Nano models use AdamW (weight decay
0.01, 0.001 per 64 images): :meth:`TrainConfig.for_model` picks the right family defaults.

Every field can be overridden from a JSON/YAML file (:meth:`TrainConfig.from_file`) and from
``key=value`` strings (:meth:`TrainConfig.apply_overrides`, the recipes' ``--set``).
"""
from __future__ import annotations

import copy
import dataclasses
import json
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Tuple, Union
from ..config_dict import check_config_dict

__all__ = ["TrainConfig", "parse_override"]

NANO_BACKBONES = ("tinynas_mob",)


@dataclass
class TrainConfig:
    """The training recipe. All fields are JSON values.

    Attributes:
        epochs: total training epochs.
        batch_size: images per optimizer step over all processes (the learning rate scales with it).
        accumulate: micro-batches per optimizer step (gradient accumulation); each process loads
            ``batch_size / (world_size * accumulate)`` images per micro-batch.
        img_size: training/evaluation input size (multiple of 32); ``None`` uses the model's.
        optimizer: ``sgd`` or ``adamw`` (see :data:`damo_pipeline.engine.optim.OPTIMIZERS`).
        lr_per_image: peak learning rate per image; peak = ``lr_per_image * batch_size``.
        momentum / nesterov: SGD settings.
        betas / eps: AdamW settings.
        weight_decay: decay for conv/linear weights and the head's Scale scalars; norm-layer parameters
            and every ``bias`` get 0.
        param_groups: ``per_tensor`` (official: one optimizer group per parameter tensor) or ``merged``
            (one group per weight-decay value; the same update, fewer groups).
        warmup_epochs: quadratic warm-up length (epochs, may be fractional).
        warmup_min_iters: lower bound on the warm-up length in iterations (0 = official).
        warmup_start_lr: learning rate at iteration 0.
        no_aug_epochs: final epochs without mosaic/mixup, at the final learning rate.
        min_lr_ratio: final learning rate as a fraction of the peak.
        ema / ema_decay / ema_ramp_iters: model EMA, ``m = decay * (1 - exp(-it / ramp))``.
        eval_interval: evaluate every N epochs (and every epoch in the no-aug phase, and at the end).
        checkpoint_interval: write ``last.pt`` every N epochs (and at the end and on Ctrl-C).
        eval_batch_size: evaluation images per process per batch.
        workers: data-loading worker processes per training process.
        seed: base seed (torch, numpy, python, data order, augmentation); ``None`` = unseeded.
        deterministic: ask torch for deterministic kernels (slower on GPU).
        amp: mixed precision; ``None`` = on for CUDA, off on CPU.
        amp_dtype: ``float16`` (with a GradScaler) or ``bfloat16``.
        channels_last: NHWC memory format for the model and the batches (faster with cuDNN and with
            oneDNN on x86 CPUs: 1.3x for T and 1.55x for Ns per CPU training step, measured here).
        flush_denormal: flush denormal floats to zero on the CPU; randomly initialised networks produce
            them and x86 CPUs compute on them up to ~50x slower (an Ns CPU step: 20-40 s -> 1-2 s here).
        sync_bn: convert BatchNorm to SyncBatchNorm in multi-GPU runs (official).
        find_unused_parameters: DistributedDataParallel option (official True; False is faster).
        clip_grad_norm: max L2 norm of the gradients, ``None`` = no clipping (official, except distillation).
        augment: overrides of the data augmentation config (e.g. ``{"mosaic_prob": 0.5}``).
        score_threshold / iou_threshold / max_detections: evaluation post-processing; ``None`` = model's.
        log_interval: iterations between progress-bar/log updates.
        tensorboard: write TensorBoard events when ``tensorboard`` is installed.
        plots: draw ``curves.png`` at the end.
    """

    epochs: int = 300
    batch_size: int = 256
    accumulate: int = 1
    img_size: Optional[int] = None
    optimizer: str = "sgd"
    lr_per_image: float = 0.01 / 64
    momentum: float = 0.9
    nesterov: bool = True
    betas: List[float] = field(default_factory=lambda: [0.9, 0.999])
    eps: float = 1e-8
    weight_decay: float = 5e-4
    param_groups: str = "per_tensor"
    warmup_epochs: float = 5.0
    warmup_min_iters: int = 0
    warmup_start_lr: float = 0.0
    no_aug_epochs: int = 16
    min_lr_ratio: float = 0.05
    ema: bool = True
    ema_decay: float = 0.9998
    ema_ramp_iters: float = 2000.0
    eval_interval: int = 10
    checkpoint_interval: int = 1
    eval_batch_size: int = 32
    workers: int = 4
    seed: Optional[int] = 0
    deterministic: bool = False
    amp: Optional[bool] = None
    amp_dtype: str = "float16"
    channels_last: bool = True
    flush_denormal: bool = True
    sync_bn: bool = True
    find_unused_parameters: bool = False
    clip_grad_norm: Optional[float] = None
    augment: Dict[str, Any] = field(default_factory=dict)
    score_threshold: Optional[float] = None
    iou_threshold: Optional[float] = None
    max_detections: Optional[int] = None
    log_interval: int = 10
    tensorboard: bool = True
    plots: bool = True

    def __post_init__(self) -> None:
        self.validate()

    # ------------------------------------------------------------------ checks
    def validate(self) -> None:
        """Raise ValueError naming the field when a value cannot work."""
        positive_ints = ("epochs", "batch_size", "accumulate", "eval_interval", "checkpoint_interval",
                         "eval_batch_size", "log_interval")
        for name in positive_ints:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"TrainConfig.{name} must be a positive integer, got {value!r}.")
        for name in ("no_aug_epochs", "workers", "warmup_min_iters"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"TrainConfig.{name} must be a non-negative integer, got {value!r}.")
        if self.img_size is not None and (not isinstance(self.img_size, int) or self.img_size <= 0
                                          or self.img_size % 32):
            raise ValueError(f"TrainConfig.img_size must be a positive multiple of 32 or null, got {self.img_size!r}.")
        if self.warmup_epochs < 0:
            raise ValueError(f"TrainConfig.warmup_epochs must be >= 0, got {self.warmup_epochs!r}.")
        if self.no_aug_epochs > self.epochs:
            raise ValueError(f"TrainConfig.no_aug_epochs ({self.no_aug_epochs}) exceeds epochs ({self.epochs}); "
                             f"lower it with --set no_aug_epochs=N.")
        if self.lr_per_image <= 0:
            raise ValueError(f"TrainConfig.lr_per_image must be > 0, got {self.lr_per_image!r}.")
        if not 0.0 <= self.min_lr_ratio <= 1.0:
            raise ValueError(f"TrainConfig.min_lr_ratio must lie in [0, 1], got {self.min_lr_ratio!r}.")
        if not 0.0 <= self.ema_decay < 1.0 or self.ema_ramp_iters <= 0:
            raise ValueError("TrainConfig.ema_decay must lie in [0, 1) and ema_ramp_iters be > 0, "
                             f"got {self.ema_decay!r} and {self.ema_ramp_iters!r}.")
        if self.param_groups not in ("per_tensor", "merged"):
            raise ValueError(f"TrainConfig.param_groups must be 'per_tensor' or 'merged', got {self.param_groups!r}.")
        if self.amp_dtype not in ("float16", "bfloat16"):
            raise ValueError(f"TrainConfig.amp_dtype must be 'float16' or 'bfloat16', got {self.amp_dtype!r}.")
        if self.batch_size % self.accumulate:
            raise ValueError(f"TrainConfig.batch_size ({self.batch_size}) must be divisible by accumulate "
                             f"({self.accumulate}).")
        if len(self.betas) != 2:
            raise ValueError(f"TrainConfig.betas must be two numbers, got {self.betas!r}.")
        if not isinstance(self.augment, dict):
            raise ValueError(f"TrainConfig.augment must be a dict of augmentation overrides, got {self.augment!r}.")

    # --------------------------------------------------------------- derived
    @property
    def base_lr(self) -> float:
        """Peak learning rate: ``lr_per_image * batch_size`` (0.04 for the official T/S/M/L recipe)."""
        return self.lr_per_image * self.batch_size

    def micro_batch_size(self, world_size: int = 1) -> int:
        """Images each process loads per forward pass.

        Raises:
            ValueError: ``batch_size`` is not divisible by ``world_size * accumulate``.
        """
        per_step = world_size * self.accumulate
        if self.batch_size % per_step:
            raise ValueError(f"batch_size {self.batch_size} is not divisible by world_size x accumulate "
                             f"= {world_size} x {self.accumulate}; choose a batch size that is.")
        return self.batch_size // per_step

    # ------------------------------------------------------------ factories
    @classmethod
    def for_model(cls, model_config: Any = None, **overrides: Any) -> "TrainConfig":
        """The official recipe for a model family: SGD for T/S/M/L, AdamW for the Nano models.

        Args:
            model_config: a :class:`~damo_pipeline.models.ModelConfig` (or its dict); ``None`` = T/S/M/L.
            **overrides: any field.
        """
        values: Dict[str, Any] = {}
        backbone = None
        if model_config is not None:
            backbone = (model_config["backbone"] if isinstance(model_config, dict) else model_config.backbone)
        if backbone is not None and backbone.get("type") in NANO_BACKBONES:
            values.update(optimizer="adamw", lr_per_image=0.001 / 64, weight_decay=0.01)
        values.update(overrides)
        return cls.from_dict(values)

    def to_dict(self) -> Dict[str, Any]:
        """A deep-copied, JSON-serialisable dict."""
        return copy.deepcopy(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "TrainConfig":
        """Build from a (possibly partial) dict; unknown keys raise ValueError listing the known ones."""
        check_config_dict(cls, data, "training config")
        values = {key: _coerce(key, value) for key, value in copy.deepcopy(data).items()}
        return cls(**values)

    @classmethod
    def from_file(cls, path: Union[str, Path], base: Optional["TrainConfig"] = None) -> "TrainConfig":
        """Read a ``.json`` or ``.yaml``/``.yml`` file of fields (partial files update ``base``).

        Raises:
            FileNotFoundError: the file does not exist.
            ValueError: the file is not a mapping or holds unknown keys.
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"Training config file {str(path)!r} does not exist.")
        text = path.read_text()
        if path.suffix.lower() in (".yaml", ".yml"):
            try:
                import yaml
            except ImportError as e:
                raise ValueError(f"Reading {str(path)!r} needs PyYAML (pip install pyyaml), or use a .json file.") from e
            data = yaml.safe_load(text)
        elif path.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            raise ValueError(f"Training config {str(path)!r} must be a .json, .yaml or .yml file.")
        if not isinstance(data, dict):
            raise ValueError(f"Training config {str(path)!r} must hold a mapping of fields, got {type(data).__name__}.")
        merged = (base or cls()).to_dict()
        merged.update(data)
        return cls.from_dict(merged)

    def replace(self, **overrides: Any) -> "TrainConfig":
        """A copy with fields replaced (the ``augment`` dict is merged key by key)."""
        data = self.to_dict()
        for key, value in overrides.items():
            if key == "augment" and isinstance(value, dict):
                data["augment"].update(copy.deepcopy(value))
            else:
                data[key] = copy.deepcopy(value)
        return TrainConfig.from_dict(data)

    def apply_overrides(self, overrides: Iterable[str]) -> "TrainConfig":
        """A copy with ``key=value`` strings applied (the recipes' ``--set``).

        Values are parsed as JSON when possible (``0.5``, ``true``, ``null``, ``[0.9, 0.99]``) and as plain
        strings otherwise; ``augment.<name>=value`` sets one augmentation override.

        Raises:
            ValueError: malformed pair, unknown key, or a value of the wrong type.
        """
        updates: Dict[str, Any] = {}
        augment: Dict[str, Any] = {}
        known = {f.name for f in dataclasses.fields(self)}
        for item in overrides:
            key, value = parse_override(item)
            if key.startswith("augment."):
                augment[key.split(".", 1)[1]] = value
                continue
            if key not in known:
                raise ValueError(f"--set {item!r}: unknown training config key {key!r}; known keys: {sorted(known)}.")
            updates[key] = value
        if augment:
            updates["augment"] = {**updates.get("augment", {}), **augment}
        return self.replace(**updates) if updates else self.replace()


def parse_override(item: str) -> Tuple[str, Any]:
    """Split ``"key=value"`` and parse the value as JSON when possible, else keep the string.

    Raises:
        ValueError: no ``=`` or an empty key.
    """
    if not isinstance(item, str) or "=" not in item:
        raise ValueError(f"Override {item!r} must look like key=value (e.g. --set epochs=50).")
    key, raw = item.split("=", 1)
    key = key.strip()
    if not key:
        raise ValueError(f"Override {item!r} has an empty key.")
    raw = raw.strip()
    lowered = raw.lower()
    if lowered in ("none", "null"):
        return key, None
    if lowered in ("true", "yes", "on"):
        return key, True
    if lowered in ("false", "no", "off"):
        return key, False
    try:
        return key, json.loads(raw)
    except json.JSONDecodeError:
        return key, raw


_HINTS = typing.get_type_hints(TrainConfig)


def _coerce(key: str, value: Any) -> Any:
    """Check ``value`` against the field's annotation, converting the lossless cases (int -> float)."""
    hint = _HINTS[key]
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    optional = origin is Union and type(None) in args
    if optional:
        if value is None:
            return None
        hint = next(a for a in args if a is not type(None))
        origin = typing.get_origin(hint)
    if hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif hint is str:
        if isinstance(value, str):
            return value
    elif origin in (list, List):
        if isinstance(value, (list, tuple)):
            return list(value)
    elif origin in (dict, Dict):
        if isinstance(value, dict):
            return value
    else:  # pragma: no cover - every field has one of the hints above
        return value
    expected = getattr(hint, "__name__", str(hint)) + (" or null" if optional else "")
    raise ValueError(f"TrainConfig.{key} must be {expected}, got {value!r} ({type(value).__name__}).")
