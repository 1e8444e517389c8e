"""What ``recipes/train.py`` and ``recipes/finetune.py`` share: arguments, config resolution, the run itself.

A :class:`Recipe` names its defaults (how the official schedule is fitted to the requested epochs,
the batch size, whether to start from pretrained weights); :func:`run_recipe` loads the data, builds the
model, trains with :class:`~damo_pipeline.engine.Trainer`, writes the hub folder from the best EMA
weights and pushes it when asked. Order of precedence for settings: recipe defaults < ``--config`` file
< dedicated flags (``--epochs``, ``--batch-size`` ...) < ``--set key=value``.
"""
from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch

from ..models import Detector, ModelConfig, build_model
from .checkpoint import load_training_checkpoint
from .config import TrainConfig, parse_override
from .export import export_hub_folder
from .hooks import LossPlugin
from .transfer import load_pretrained_into
from .trainer import Trainer, TrainResult

logger = logging.getLogger(__name__)

__all__ = ["Recipe", "add_arguments", "configure_logging", "fit_schedule", "resolve_train_config", "run_recipe"]

OFFICIAL_EPOCHS = 300

PluginFactory = Callable[[Detector, argparse.Namespace], List[LossPlugin]]


@dataclass(frozen=True)
class Recipe:
    """A training recipe's defaults.

    Attributes:
        name: ``finetune`` or ``train``.
        pretrained_default: start from the model's zoo weights unless ``--pretrained`` says otherwise.
        proportional_schedule: scale warm-up, no-aug and evaluation interval to the run length (fine-tune);
            otherwise keep the official values and shrink them only when they do not fit.
        defaults: TrainConfig overrides applied before the config file and the flags.
    """

    name: str
    pretrained_default: bool
    proportional_schedule: bool
    defaults: Dict[str, Any] = field(default_factory=dict)


def configure_logging(rank: int = 0, verbose: bool = False) -> None:
    """INFO logs on rank 0 (DEBUG with ``verbose``), warnings only on the other ranks (entry points only)."""
    level = (logging.DEBUG if verbose else logging.INFO) if rank == 0 else logging.WARNING
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")


def add_arguments(parser: argparse.ArgumentParser, recipe: Recipe) -> argparse.ArgumentParser:
    """The recipes' command-line options."""
    parser.add_argument("--model", help="zoo id (damoyolo-t, damoyolo-ns, ...) or a model config .json "
                                        "(e.g. a NAS result); default on --resume: the checkpoint's")
    parser.add_argument("--data", help="dataset: COCO json / root, Pascal VOC root, or YOLO data.yaml / root")
    parser.add_argument("--format", choices=["coco", "voc", "yolo"], help="dataset format (default: detected)")
    parser.add_argument("--val-split", default="val", help="split evaluated during training (default: val)")
    parser.add_argument("--no-val", action="store_true", help="train without evaluation (no best.pt)")
    parser.add_argument("--out", required=True, help="run folder, e.g. runs/my-model")
    parser.add_argument("--epochs", type=int,
                        help="training epochs" + (" (official: 300)" if recipe.name == "train" else ""))
    parser.add_argument("--img-size", type=int, help="input size, multiple of 32 (default: the model's)")
    parser.add_argument("--batch-size", type=int, help="images per optimizer step over all processes "
                                                      "(the learning rate scales with it)")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:1 or auto (default)")
    parser.add_argument("--workers", type=int, help="data-loading processes per training process")
    parser.add_argument("--seed", type=int, help="random seed (default 0)")
    if recipe.pretrained_default:
        parser.add_argument("--pretrained", default=None,
                            help="starting weights: zoo id, hub id, model folder or checkpoint file; 'none' trains "
                                 "from scratch (default: the model's COCO weights, from scratch when unavailable)")
    parser.add_argument("--resume", nargs="?", const=True, default=None, metavar="CHECKPOINT",
                        help="continue the run in --out (its last.pt) or from CHECKPOINT")
    parser.add_argument("--config", help="JSON/YAML file of training settings (TrainConfig fields)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override any training setting, e.g. --set lr_per_image=0.0005 --set ema=false; "
                             "augmentation: --set augment.mixup_prob=0")
    parser.add_argument("--push-to-hub", metavar="ORG/NAME", help="publish the trained model folder as ORG/NAME")
    parser.add_argument("--hub", default="hf", help="where --push-to-hub publishes: hf, modelscope, or a local "
                                                     "registry folder (default: hf)")
    parser.add_argument("--verbose", action="store_true", help="debug logging")
    return parser


def fit_schedule(epochs: int, proportional: bool, official: Optional[TrainConfig] = None) -> Dict[str, Any]:
    """Warm-up, no-aug and evaluation-interval values for a run of ``epochs`` epochs.

    Proportional (fine-tune): the official fractions of a 300-epoch run (5 warm-up, 16 no-aug epochs),
    at least 1 epoch each, and evaluation every ``epochs // 10`` epochs (1 to 10). Otherwise the official
    values are kept and shrunk only when they do not fit into ``epochs``.
    """
    ref = official or TrainConfig()
    if proportional and epochs < OFFICIAL_EPOCHS:
        ratio = epochs / OFFICIAL_EPOCHS
        warmup = max(1.0, round(ref.warmup_epochs * ratio, 2)) if ref.warmup_epochs > 0 else 0.0
        no_aug = max(1, round(ref.no_aug_epochs * ratio)) if ref.no_aug_epochs > 0 else 0
        interval = max(1, min(ref.eval_interval, epochs // 10))
    else:
        no_aug = min(ref.no_aug_epochs, max(epochs // 4, 1 if ref.no_aug_epochs else 0))
        warmup = min(ref.warmup_epochs, epochs / 4)
        interval = min(ref.eval_interval, epochs)
    return {"warmup_epochs": float(warmup), "no_aug_epochs": int(min(no_aug, epochs)), "eval_interval": int(interval)}


def resolve_train_config(args: argparse.Namespace, model_config: ModelConfig, recipe: Recipe,
                         base: Optional[TrainConfig] = None) -> TrainConfig:
    """Recipe defaults (or ``base`` on resume) < ``--config`` file < flags < ``--set``.

    For a new run the warm-up, no-aug and evaluation interval are fitted to the epochs
    (:func:`fit_schedule`) unless the config file or ``--set`` give them.
    """
    explicit = set()
    if base is None:
        data = TrainConfig.for_model(model_config).to_dict()
        data.update(recipe.defaults)
    else:
        data = base.to_dict()
    if args.config:
        file_cfg = TrainConfig.from_file(args.config, base=TrainConfig.from_dict(
            {**data, "no_aug_epochs": 0}))
        file_keys = set(_read_mapping(args.config))
        data.update({k: v for k, v in file_cfg.to_dict().items() if k in file_keys})
        explicit |= file_keys
    flags = {"epochs": args.epochs, "batch_size": args.batch_size, "workers": args.workers, "seed": args.seed,
             "img_size": args.img_size}
    data.update({k: v for k, v in flags.items() if v is not None})
    explicit |= {parse_override(item)[0] for item in args.overrides}
    if base is None:
        official = TrainConfig.for_model(model_config)
        fitted = fit_schedule(int(data["epochs"]), recipe.proportional_schedule, official)
        data.update({k: v for k, v in fitted.items() if k not in explicit})
    elif data["no_aug_epochs"] > data["epochs"]:
        data["no_aug_epochs"] = data["epochs"]
    # --set may lower no_aug_epochs below a default that exceeds a short run: apply it before validating.
    cfg = TrainConfig.from_dict({**data, "no_aug_epochs": 0}).apply_overrides(args.overrides)
    set_keys = {parse_override(item)[0] for item in args.overrides}
    return cfg if "no_aug_epochs" in set_keys else cfg.replace(no_aug_epochs=data["no_aug_epochs"])


def _read_mapping(path: str) -> Dict[str, Any]:
    """The keys a config file sets (TrainConfig.from_file validated it already)."""
    import json

    text = Path(path).read_text()
    if Path(path).suffix.lower() in (".yaml", ".yml"):
        import yaml

        return dict(yaml.safe_load(text) or {})
    return dict(json.loads(text))


def _load_splits(data: str, fmt: Optional[str], val_split: Optional[str],
                 class_names: Optional[List[str]]) -> Tuple[Any, Optional[Any]]:
    from ..data import load_detection_dataset

    train = load_detection_dataset(data, split="train", format=fmt, class_names=class_names)
    val = None
    if val_split:
        try:
            val = load_detection_dataset(data, split=val_split, format=fmt, class_names=train.class_names)
        except FileNotFoundError as e:
            raise FileNotFoundError(f"{e} Training evaluates on the {val_split!r} split: add it, choose another "
                                    f"with --val-split, or train without evaluation with --no-val.") from e
    logger.info("Data: %s", train.report.summary())
    if val is not None:
        logger.info("Data: %s", val.report.summary())
    return train, val


def _build_model(args: argparse.Namespace, class_names: List[str]) -> Detector:
    if not args.model:
        raise ValueError("--model is required (a zoo id such as damoyolo-t, or a model config .json).")
    overrides = {"img_size": args.img_size} if args.img_size else {}
    return build_model(args.model, class_names=class_names, **overrides)


def run_recipe(args: argparse.Namespace, recipe: Recipe, plugin_factory: Optional[PluginFactory] = None,
               card_details: Optional[Callable[[argparse.Namespace], Dict[str, Any]]] = None) -> TrainResult:
    """Load data, build the model (and its starting weights), train, export the hub folder, push.

    Raises:
        KeyboardInterrupt: after writing a resumable ``last.pt`` (Ctrl-C).
    """
    from ..data import EvalDataset, TrainAugmentConfig, TrainDataset, collate_detection

    out_dir = Path(args.out)
    resume_ckpt = None
    if args.resume:
        path = out_dir / "last.pt" if args.resume is True else Path(args.resume)
        resume_ckpt = load_training_checkpoint(path)
        args.resume = path
    if resume_ckpt is not None:
        data_path = args.data or resume_ckpt.get("data")
        if not data_path:
            raise ValueError("--data is required: the checkpoint does not record its dataset.")
        train_set, val_set = _load_splits(data_path, args.format or resume_ckpt.get("data_format"),
                                          None if args.no_val else args.val_split, resume_ckpt["class_names"])
        model = build_model(ModelConfig.from_dict(resume_ckpt["model_config"]))
        cfg = resolve_train_config(args, model.config, recipe, base=TrainConfig.from_dict(resume_ckpt["train_config"]))
        pretrained = resume_ckpt.get("pretrained")
    else:
        if not args.data:
            raise ValueError("--data is required (a COCO json/root, a Pascal VOC root or a YOLO data.yaml).")
        data_path = args.data
        train_set, val_set = _load_splits(data_path, args.format, None if args.no_val else args.val_split, None)
        model = _build_model(args, train_set.class_names)
        pretrained = None
        if recipe.pretrained_default:
            explicit = args.pretrained is not None
            spec = args.pretrained if explicit else _default_pretrained(args.model)
            report = load_pretrained_into(model, spec, explicit=explicit)
            pretrained = report.source if report is not None else None
        cfg = resolve_train_config(args, model.config, recipe)
    if cfg.img_size is not None and cfg.img_size != model.config.img_size:
        model.config = model.config.replace(img_size=cfg.img_size)  # the architecture does not depend on it
    img_size = model.config.img_size
    known = set(TrainAugmentConfig().to_dict())
    unknown = sorted(set(cfg.augment) - known)
    if unknown:
        raise ValueError(f"Unknown augmentation settings {unknown} (from --set augment.NAME=...); known: {sorted(known)}.")
    augment = TrainAugmentConfig.for_model(model.config, **{"img_size": img_size, **cfg.augment})
    train_data = TrainDataset(train_set, augment, seed=cfg.seed if cfg.seed is not None else 0)
    val_data = EvalDataset(val_set, img_size=img_size, resize=model.config.resize) if val_set is not None else None
    metadata = {"data": str(data_path), "data_format": args.format, "category_ids": list(train_set.category_ids),
                "pretrained": pretrained, "recipe": recipe.name, "augment": augment.to_dict()}
    plugins = plugin_factory(model, args) if plugin_factory is not None else []
    trainer = Trainer(model, train_data, cfg, out_dir, val_dataset=val_data, device=args.device,
                      collate_fn=collate_detection, resume=args.resume if resume_ckpt is not None else None,
                      metadata=metadata, plugins=plugins)
    result = trainer.fit()
    if trainer.dist.is_main:
        extra = card_details(args) if card_details is not None else {}
        _export(result, cfg, model, data_path, pretrained, args, extra)
    trainer.dist.barrier()
    return result


def _default_pretrained(model_arg: str) -> Optional[str]:
    """The zoo weights for a zoo id; None for custom configs (``.json``)."""
    from ..models import list_models

    name = str(model_arg).strip().lower()
    return name if name in list_models() else None


def _export(result: TrainResult, cfg: TrainConfig, model: Detector, data_path: str, pretrained: Optional[str],
            args: argparse.Namespace, extra_training: Optional[Dict[str, Any]] = None) -> None:
    source = result.best_checkpoint or result.last_checkpoint
    if source is None:
        logger.warning("No checkpoint was written; nothing to export.")
        return
    training = {"recipe": "damo_pipeline " + Path(sys.argv[0]).name, "epochs": cfg.epochs,
                "batch_size": cfg.batch_size, "img_size": model.config.img_size, "optimizer": cfg.optimizer,
                "lr_per_image": cfg.lr_per_image, "from": pretrained or "scratch", **(extra_training or {})}
    folder = export_hub_folder(source, Path(args.out) / "model", dataset=Path(str(data_path)).name,
                               base_model=pretrained, training=training)
    logger.info("Hub folder: %s (load with damo_pipeline.hub.load_detector(%r))", folder, str(folder))
    if args.push_to_hub:
        from ..hub import push_to_hub

        target = push_to_hub(folder, args.push_to_hub, hub=args.hub)
        logger.info("Pushed to %s", target)


def main(recipe: Recipe, description: str, argv: Optional[List[str]] = None,
         parser_hook: Optional[Callable[[argparse.ArgumentParser], None]] = None,
         plugin_factory: Optional[PluginFactory] = None,
         card_details: Optional[Callable[[argparse.Namespace], Dict[str, Any]]] = None) -> int:
    """Entry point of a recipe script: parse, run, print the outcome. Returns the exit code.

    ``plugin_factory(model, args)`` returns extra loss plugins (distillation) once the model is built;
    ``card_details(args)`` adds entries to the model card's training section.
    """
    parser = argparse.ArgumentParser(description=description,
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_arguments(parser, recipe)
    if parser_hook is not None:
        parser_hook(parser)
    args = parser.parse_args(argv)
    configure_logging(int(os.environ.get("RANK", "0")), args.verbose)
    signal.signal(signal.SIGTERM, _terminate)  # a killed or pre-empted run also leaves a resumable last.pt
    if not args.resume and args.epochs is None and recipe.name != "train":
        parser.error("--epochs is required")
    try:
        result = run_recipe(args, recipe, plugin_factory, card_details)
    except KeyboardInterrupt:
        print(f"\nInterrupted. Continue with: {' '.join(_resume_command(args))}", file=sys.stderr)
        return 130
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    finally:
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
    if int(os.environ.get("RANK", "0")) == 0:
        _print_summary(result)
    return 0


def _terminate(signum: int, frame: Any) -> None:
    """SIGTERM handler of the recipe entry points: stop like Ctrl-C (the trainer writes last.pt)."""
    raise KeyboardInterrupt(f"signal {signum}")


def _resume_command(args: argparse.Namespace) -> List[str]:
    return [sys.executable, sys.argv[0], "--out", str(args.out), "--resume"]


def _print_summary(result: TrainResult) -> None:
    print(f"\nTrained {result.epochs_done} epochs ({result.iteration} iterations); run folder {result.out_dir}")
    if result.best_result is not None:
        print(f"Best validation AP {result.best_ap:.4f} (AP50 {result.best_result.ap50:.4f}) at epoch "
              f"{result.best_epoch}:")
        print(result.best_result.table())
    model_dir = result.out_dir / "model"
    if model_dir.is_dir():
        print(f"Model folder: {model_dir}  ->  damo_pipeline.hub.load_detector({str(model_dir)!r})")
