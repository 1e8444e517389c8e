"""The training loop: the official DAMO-YOLO recipe on CPU, one GPU (AMP) or several (torchrun + DDP).

One :class:`Trainer` runs the epochs; everything else is a separate piece it asks for: the recipe
(:class:`~damo_pipeline.engine.config.TrainConfig`), the optimizer and schedule (``optim.py``), the EMA
(``ema.py``), the evaluator (``evaluator.py``), checkpoints (``checkpoint.py``), metrics logging and
curves. Distillation and other extra losses plug in as :class:`~damo_pipeline.engine.hooks.LossPlugin`
objects, observers as :class:`~damo_pipeline.engine.hooks.Callback` objects (``hooks.py``).

Run folder (rank 0 writes): ``last.pt`` (every ``checkpoint_interval`` epochs, at the end and on
Ctrl-C), ``best.pt`` (best validation AP), ``metrics.jsonl``/``metrics.csv``, ``results.json`` (the
best evaluation with per-class AP), ``curves.png``, ``train_config.json``, ``tensorboard/``.
"""
from __future__ import annotations

import contextlib
import json
import logging
import math
import random
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader

from ..models import Detector
from .checkpoint import CHECKPOINT_FORMAT, capture_rng_state, load_training_checkpoint, restore_rng_state, save_atomic
from .config import TrainConfig
from .distributed import DistContext, broadcast_object, init_distributed, no_buffer_sync_kwargs
from .ema import ModelEMA
from .evaluator import COCOEvaluator, EvalResult
from .hooks import Callback, LossPlugin, StepInfo
from .metrics_log import MetricsLogger
from .optim import LRSchedule, build_optimizer, set_lr
from .plots import plot_curves
from .sampler import EpochSampler
from .step import AmpSettings, TrainStep

logger = logging.getLogger(__name__)

__all__ = ["TrainResult", "Trainer", "seed_everything"]

PathLike = Union[str, Path]
EVAL_KEYS = ("AP", "AP50", "AP75", "APs", "APm", "APl")


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % (2 ** 32))
    torch.manual_seed(seed)


@dataclass
class TrainResult:
    """What :meth:`Trainer.fit` returns.

    Attributes:
        out_dir: the run folder.
        epochs_done: completed epochs.
        iteration: optimizer steps done.
        best_ap / best_epoch: best validation AP (-1 without evaluation) and its 1-based epoch.
        best_result: the best :class:`EvalResult` (None without evaluation).
        last_checkpoint / best_checkpoint: paths (best is None without evaluation).
        records: the metrics.jsonl records.
        interrupted: the run stopped early (``request_stop``).
    """

    out_dir: Path
    epochs_done: int
    iteration: int
    best_ap: float
    best_epoch: int
    best_result: Optional[EvalResult]
    last_checkpoint: Optional[Path]
    best_checkpoint: Optional[Path]
    records: List[Dict[str, Any]] = field(default_factory=list)
    interrupted: bool = False


class Trainer:
    """Trains a :class:`~damo_pipeline.models.Detector` with the official recipe.

    Args:
        model: the detector (training form; its config's class names are saved with checkpoints).
        train_dataset: training samples; ``set_epoch(epoch)`` and ``set_mosaic(enabled)`` are called when
            present (``damo_pipeline.data.TrainDataset``).
        cfg: the recipe.
        out_dir: run folder.
        val_dataset: evaluation dataset (``damo_pipeline.data.EvalDataset``); builds a :class:`COCOEvaluator`.
        evaluator: a ready evaluator instead of ``val_dataset``.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"`` or ``None``/``"auto"``; in torchrun runs each process uses
            ``cuda:LOCAL_RANK``.
        plugins: extra losses (distillation); their parameters join the optimizer.
        callbacks: loop observers.
        collate_fn: batches samples into ``(images, targets)``; default ``damo_pipeline.data.collate_detection``.
        resume: ``True`` (the run folder's ``last.pt``) or a checkpoint path: continue that run exactly.
        metadata: JSON values saved in every checkpoint (e.g. ``category_ids``, dataset description).
    """

    def __init__(self, model: Detector, train_dataset: Any, cfg: TrainConfig, out_dir: PathLike, *,
                 val_dataset: Any = None, evaluator: Optional[COCOEvaluator] = None,
                 device: Optional[Union[str, torch.device]] = None, plugins: Sequence[LossPlugin] = (),
                 callbacks: Sequence[Callback] = (), collate_fn: Optional[Callable] = None,
                 resume: Union[bool, PathLike, None] = None, metadata: Optional[Dict[str, Any]] = None) -> None:
        if not isinstance(cfg, TrainConfig):
            raise TypeError(f"cfg must be a TrainConfig, got {type(cfg).__name__}.")
        if len(train_dataset) == 0:
            raise ValueError("The training dataset has no images.")
        self.cfg = cfg
        self.dist: DistContext = init_distributed(device)
        self.device = self.dist.device
        self.out_dir = Path(out_dir)
        self.model = model
        self.train_dataset = train_dataset
        self.plugins = list(plugins)
        self.callbacks = list(callbacks)
        self.metadata = dict(metadata or {})
        self.collate_fn = collate_fn
        self.resume = resume
        if evaluator is None and val_dataset is not None:
            evaluator = COCOEvaluator(val_dataset, batch_size=cfg.eval_batch_size, workers=min(cfg.workers, 2),
                                      score_threshold=cfg.score_threshold, iou_threshold=cfg.iou_threshold,
                                      max_detections=cfg.max_detections, collate_fn=collate_fn, dist=self.dist)
        elif evaluator is not None:
            evaluator.dist = self.dist
        self.evaluator = evaluator
        self.amp = AmpSettings.from_config(cfg, self.device)
        self.micro_batch = cfg.micro_batch_size(self.dist.world_size)
        seed = cfg.seed if cfg.seed is not None else broadcast_object(random.randrange(2 ** 31), self.dist)
        self.data_seed = int(seed)
        self.sampler = EpochSampler(len(train_dataset), self.dist.rank, self.dist.world_size, seed=self.data_seed)
        self.micro_per_epoch = math.ceil(self.sampler.per_rank / self.micro_batch)
        self.iters_per_epoch = math.ceil(self.micro_per_epoch / cfg.accumulate)
        self.schedule = LRSchedule.from_config(cfg, self.iters_per_epoch)
        self.max_iterations = self.schedule.total_iters
        # loop state
        self.epoch = 0
        self.iteration = 0
        self.epoch_step = 0
        self.best_ap = -1.0
        self.best_epoch = 0
        self.best_result: Optional[EvalResult] = None
        self.lr = 0.0
        self._stop = False
        self._setup_done = False
        self._resume_partial: Optional[Dict[str, Any]] = None
        self._train_loader: Optional[DataLoader] = None
        self._sums: Dict[str, torch.Tensor] = {}
        self._count = self._images = 0

    # ------------------------------------------------------------------ set-up
    def request_stop(self) -> None:
        """Finish the current epoch (evaluate, checkpoint) and stop; for callbacks (early stopping)."""
        self._stop = True

    @property
    def eval_model(self) -> nn.Module:
        """The weights evaluated and saved as ``model``: the EMA when enabled."""
        return self.ema.module if self.ema is not None else self.model

    def _setup(self) -> None:
        cfg = self.cfg
        if cfg.seed is not None:
            seed_everything(cfg.seed + self.dist.rank)
        if cfg.deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
            torch.backends.cudnn.benchmark = False
        elif self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        if cfg.flush_denormal and self.device.type == "cpu":
            torch.set_flush_denormal(True)  # process-wide; a training process owns its math settings
        if self.dist.distributed and self.device.type == "cuda" and cfg.sync_bn:
            self.model = nn.SyncBatchNorm.convert_sync_batchnorm(self.model)
        self.model.to(self.device)
        self.channels_last = cfg.channels_last
        if self.evaluator is not None:
            self.evaluator.channels_last = self.channels_last
        if self.channels_last:
            self.model.to(memory_format=torch.channels_last)
        for plugin in self.plugins:
            plugin.to(self.device)
        extra = [m for plugin in self.plugins for m in plugin.trainable_modules()]
        self.optimizer = build_optimizer(cfg, [self.model] + extra)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp.needs_scaler)
        self.ema = ModelEMA(self.model, cfg.ema_decay, cfg.ema_ramp_iters) if cfg.ema else None
        self.step_module: nn.Module = TrainStep(self.model, self.plugins, self.amp)
        if self.dist.distributed:
            device_ids = [self.device.index] if self.device.type == "cuda" else None
            self.step_module = nn.parallel.DistributedDataParallel(
                self.step_module, device_ids=device_ids, find_unused_parameters=cfg.find_unused_parameters,
                **no_buffer_sync_kwargs())
        if self.resume:
            self._load_resume()
        if self.dist.is_main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            self.metrics = MetricsLogger(self.out_dir, cfg.tensorboard, resume=bool(self.resume),
                                         start_epoch=self.epoch + 1)
            self._write_run_config()
        self._setup_done = True
        logger.info("Training %s (%d classes) on %s x%d: %d images, micro-batch %d x accumulate %d, "
                    "%d iterations/epoch, %d epochs, peak lr %.4g, AMP %s", self.model.config.name,
                    self.model.num_classes, self.device, self.dist.world_size, len(self.train_dataset),
                    self.micro_batch, cfg.accumulate, self.iters_per_epoch, cfg.epochs, cfg.base_lr,
                    f"on ({cfg.amp_dtype})" if self.amp.enabled else "off")

    def _write_run_config(self) -> None:
        payload = {"train_config": self.cfg.to_dict(), "model_config": self.model.config.to_dict(),
                   "class_names": self.model.class_names, "world_size": self.dist.world_size,
                   "iters_per_epoch": self.iters_per_epoch, **self.metadata}
        tmp = self.out_dir / ".train_config.json.tmp"
        tmp.write_text(json.dumps(payload, indent=2) + "\n")
        tmp.replace(self.out_dir / "train_config.json")

    def _load_resume(self) -> None:
        path = self.out_dir / "last.pt" if self.resume is True else Path(self.resume)
        ckpt = load_training_checkpoint(path)
        saved_cfg = ckpt.get("train_config", {})
        changed = sorted(k for k, v in self.cfg.to_dict().items() if k in saved_cfg and saved_cfg[k] != v)
        if changed:
            logger.warning("Resuming with a training config that differs from the checkpoint's in %s.", changed)
        if ckpt.get("world_size", 1) != self.dist.world_size:
            logger.warning("The checkpoint was written by %s processes, this run has %d: the data order differs "
                           "from an uninterrupted run.", ckpt.get("world_size"), self.dist.world_size)
        self.model.load_state_dict(ckpt["student"], strict=True)
        if self.ema is not None:
            self.ema.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        if ckpt.get("scaler"):
            self.scaler.load_state_dict(ckpt["scaler"])
        for plugin in self.plugins:
            state = ckpt.get("plugins", {}).get(plugin.name)
            if state is not None:
                plugin.load_checkpoint_state(state)
        self.epoch = int(ckpt["epoch"])
        self.iteration = int(ckpt["iteration"])
        self.epoch_step = int(ckpt.get("epoch_step", 0))
        self.best_ap = float(ckpt.get("best_ap", -1.0))
        self.best_epoch = int(ckpt.get("best_epoch", 0))
        self._resume_partial = ckpt.get("epoch_partial") or None
        self.lr = self.schedule(self.iteration - 1) if self.iteration else 0.0
        if ckpt.get("best_result"):
            self.best_result = EvalResult.from_dict(ckpt["best_result"])
        rng = ckpt.get("rng", {}).get(str(self.dist.rank)) or ckpt.get("rng", {}).get("0")
        if rng is not None:
            restore_rng_state(rng)
        logger.info("Resumed from %s: epoch %d, iteration %d%s", path, self.epoch, self.iteration,
                    f" (+{self.epoch_step} micro-batches)" if self.epoch_step else "")

    # ------------------------------------------------------------- the loop
    def fit(self) -> TrainResult:
        """Train until ``cfg.epochs`` (or ``request_stop``); Ctrl-C writes a resumable ``last.pt`` and re-raises.

        Returns:
            :class:`TrainResult`.
        """
        if not self._setup_done:
            self._setup()
        for cb in self.callbacks:
            cb.on_train_start(self)
        interrupted = False
        try:
            while self.epoch < self.cfg.epochs and not self._stop:
                self._train_epoch(self.epoch)
                self._end_epoch(self.epoch)
        except KeyboardInterrupt:
            interrupted = True
            if self.dist.is_main:
                path = self.save_checkpoint(self.out_dir / "last.pt")
                logger.warning("Interrupted at epoch %d, iteration %d: wrote %s; continue with --resume.",
                               self.epoch + 1, self.iteration, path)
            raise
        finally:
            self._finish(interrupted)
        return self._result(interrupted=self._stop and self.epoch < self.cfg.epochs)

    def _move_batch(self, images: torch.Tensor, targets: Sequence[Dict[str, Any]]):
        images = images.to(self.device, non_blocking=True).float()
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        moved = []
        for t in targets:
            item = dict(t)
            item["boxes"] = torch.as_tensor(t["boxes"]).to(self.device, non_blocking=True).float().reshape(-1, 4)
            item["labels"] = torch.as_tensor(t["labels"]).to(self.device, non_blocking=True).long().reshape(-1)
            moved.append(item)
        return images, moved

    def _loader(self) -> DataLoader:
        """The training DataLoader, built once; workers persist across epochs (the dataset's epoch and
        mosaic switch are shared with them, and the sampler is iterated in this process)."""
        if self._train_loader is None:
            collate = self.collate_fn
            if collate is None:
                from ..data import collate_detection

                collate = collate_detection
            generator = torch.Generator()
            generator.manual_seed(self.data_seed)
            workers = self.cfg.workers
            self._train_loader = DataLoader(
                self.train_dataset, batch_size=self.micro_batch, sampler=self.sampler, num_workers=workers,
                collate_fn=collate, pin_memory=self.device.type == "cuda", drop_last=False, generator=generator,
                persistent_workers=workers > 0, prefetch_factor=4 if workers > 0 else None)
        return self._train_loader

    def _train_epoch(self, epoch: int) -> None:
        cfg = self.cfg
        no_aug = epoch >= cfg.epochs - cfg.no_aug_epochs
        if hasattr(self.train_dataset, "set_epoch"):
            self.train_dataset.set_epoch(epoch)
        if hasattr(self.train_dataset, "set_mosaic"):
            self.train_dataset.set_mosaic(not no_aug)
        skip = self.epoch_step
        self.sampler.set_epoch(epoch, skip=min(skip * self.micro_batch, self.sampler.per_rank))
        for cb in self.callbacks:
            cb.on_epoch_start(self, epoch)
        self.step_module.train()
        self._sums: Dict[str, torch.Tensor] = defaultdict(lambda: torch.zeros((), device=self.device))
        self._count = 0
        self._images = 0
        partial, self._resume_partial = self._resume_partial, None
        if skip and partial:  # running sums of the epoch's steps done before the interruption
            for name, value in partial["sums"].items():
                self._sums[name] += float(value)
            self._count, self._images = int(partial["count"]), int(partial["images"])
        self._epoch_start = time.time()
        if skip >= self.micro_per_epoch:
            return  # the epoch's steps were all done before an interruption; only its end remains
        bar = None
        if self.dist.is_main:
            from tqdm import tqdm

            bar = tqdm(total=self.micro_per_epoch, initial=skip, desc=f"epoch {epoch + 1}/{cfg.epochs}",
                       disable=None, dynamic_ncols=True, leave=True)
        iter_times: List[float] = []
        step_start = time.time()
        group_start = skip
        try:
            for micro_idx, (images, targets) in enumerate(self._loader(), start=skip):
                images, targets = self._move_batch(images, targets)
                group_size = min(cfg.accumulate, self.micro_per_epoch - group_start)
                step_end = micro_idx + 1 - group_start == group_size
                sync = contextlib.nullcontext()
                if self.dist.distributed and not step_end:
                    sync = self.step_module.no_sync()
                with sync:
                    losses = self.step_module(images, targets, self.iteration, self.max_iterations, epoch)
                    self.scaler.scale(losses["total_loss"] / group_size).backward()
                for name, value in losses.items():
                    self._sums[name] += value.detach()
                self._count += 1
                self._images += images.shape[0]
                if not step_end:
                    continue
                self._optimizer_step()
                group_start = micro_idx + 1
                self.epoch_step = micro_idx + 1
                info = StepInfo(self.iteration - 1, epoch, self.epoch_step, self.lr,
                                {k: v.detach() for k, v in losses.items()})
                for cb in self.callbacks:
                    cb.on_step_end(self, info)
                now = time.time()
                iter_times.append(now - step_start)
                step_start = now
                if bar is not None:
                    bar.update(group_size)
                    if self.iteration % cfg.log_interval == 0 or self.epoch_step == self.micro_per_epoch:
                        self._check_finite()
                        avg = sum(iter_times[-50:]) / len(iter_times[-50:])
                        eta = avg * (self.max_iterations - self.iteration)
                        bar.set_postfix(loss=f"{(self._sums['total_loss'] / self._count).item():.3f}",
                                        lr=f"{self.lr:.3g}", eta=_format_seconds(eta), refresh=False)
        finally:
            if bar is not None:
                bar.close()

    def _optimizer_step(self) -> None:
        self.lr = self.schedule(self.iteration)
        set_lr(self.optimizer, self.lr)
        if self.cfg.clip_grad_norm is not None:
            self.scaler.unscale_(self.optimizer)
            params = list(self.model.parameters()) + [p for pl in self.plugins for p in pl.grad_clip_parameters()]
            nn.utils.clip_grad_norm_(params, max_norm=self.cfg.clip_grad_norm, norm_type=2)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        if self.ema is not None:
            self.ema.update(self.model, self.iteration)
        self.iteration += 1

    def _check_finite(self) -> None:
        total = self._sums["total_loss"]
        if not bool(torch.isfinite(total)):
            raise FloatingPointError(
                f"The training loss became {total.item()} at iteration {self.iteration}. Lower the learning rate "
                f"(--set lr_per_image=...), lengthen the warm-up (--set warmup_epochs=...) or clip gradients "
                f"(--set clip_grad_norm=10).")

    def _epoch_losses(self) -> Dict[str, float]:
        names = sorted(self._sums)
        if not names:
            return {}
        values = torch.stack([self._sums[n] for n in names] + [torch.tensor(float(self._count), device=self.device)])
        if self.dist.distributed:
            dist.all_reduce(values)
        count = max(float(values[-1]), 1.0)
        return {n: float(v) / count for n, v in zip(names, values[:-1].tolist())}

    def should_evaluate(self, epoch: int) -> bool:
        """Evaluate after 0-based ``epoch``: every ``eval_interval`` epochs, every no-aug epoch, and the last."""
        done = epoch + 1
        return (self.evaluator is not None and
                (done % self.cfg.eval_interval == 0 or done > self.cfg.epochs - self.cfg.no_aug_epochs
                 or done == self.cfg.epochs))

    def _end_epoch(self, epoch: int) -> None:
        cfg = self.cfg
        if self._count:
            self._check_finite()
        losses = self._epoch_losses()
        train_time = time.time() - self._epoch_start
        record: Dict[str, Any] = {"epoch": epoch + 1, "iteration": self.iteration, "lr": self.lr, **losses,
                                  "train_time_s": round(train_time, 3),
                                  "images_per_s": round(self._images * self.dist.world_size / max(train_time, 1e-9), 2)}
        is_best = False
        if self.should_evaluate(epoch):
            start = time.time()
            if self.dist.distributed:  # evaluate every shard with rank 0's weights (the ones saved)
                for buffer in self.eval_model.buffers():
                    dist.broadcast(buffer, src=0)
            result = self.evaluator.evaluate(self.eval_model, self.device, self.amp.autocast)
            record.update({k: result.metrics[k] for k in EVAL_KEYS})
            record["eval_time_s"] = round(time.time() - start, 3)
            if result.ap > self.best_ap:
                self.best_ap, self.best_epoch, self.best_result, is_best = result.ap, epoch + 1, result, True
            for cb in self.callbacks:
                cb.on_evaluate(self, epoch, result)
        # From here on the epoch counts as done: an interruption during the evaluation above resumes by
        # re-running this epoch end; after it, by starting the next epoch.
        self.epoch, self.epoch_step = epoch + 1, 0
        if self.dist.is_main:
            self.metrics.log(record)
            log_items = ", ".join(f"{k} {record[k]:.4f}" for k in ("total_loss",) + EVAL_KEYS[:2] if k in record)
            logger.info("epoch %d/%d: %s, lr %.4g, %.1f img/s", epoch + 1, cfg.epochs, log_items, self.lr,
                        record["images_per_s"])
            if (epoch + 1) % cfg.checkpoint_interval == 0 or epoch + 1 == cfg.epochs or is_best:
                self.save_checkpoint(self.out_dir / "last.pt")
            if is_best:
                self.save_checkpoint(self.out_dir / "best.pt")
                self.best_result.save(self.out_dir / "results.json",
                                      {"epoch": self.best_epoch, "checkpoint": "best.pt",
                                       "model": self.model.config.name, "img_size": self._img_size()})
        for cb in self.callbacks:
            cb.on_epoch_end(self, epoch, record)
        self.dist.barrier()

    def _img_size(self) -> int:
        return int(self.cfg.img_size or self.model.config.img_size)

    # ------------------------------------------------------------ checkpoints
    def checkpoint_state(self) -> Dict[str, Any]:
        """Everything needed to continue the run (see ``checkpoint.py`` for the keys)."""
        rng = {"0": capture_rng_state()}
        state: Dict[str, Any] = {
            "format": CHECKPOINT_FORMAT,
            "model": self.eval_model.state_dict(),
            "student": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else {},
            "schedule": self.schedule.to_dict(),
            "plugins": {p.name: p.checkpoint_state() for p in self.plugins},
            "epoch": self.epoch,
            "iteration": self.iteration,
            "epoch_step": self.epoch_step,
            "best_ap": self.best_ap,
            "best_epoch": self.best_epoch,
            "best_result": self.best_result.to_dict() if self.best_result is not None else None,
            "epoch_partial": self._partial_state(),
            "train_config": self.cfg.to_dict(),
            "model_config": self.model.config.to_dict(),
            "class_names": self.model.class_names,
            "world_size": self.dist.world_size,
            "rng": rng,
            **{k: v for k, v in self.metadata.items() if k not in ("format",)},
        }
        for cb in self.callbacks:
            cb.on_checkpoint(self, state)
        return state

    def _partial_state(self) -> Dict[str, Any]:
        """Running loss sums of an unfinished epoch (so a resumed epoch logs the same means)."""
        if not self.epoch_step:
            return {}
        return {"sums": {k: float(v) for k, v in self._sums.items()}, "count": self._count, "images": self._images}

    def save_checkpoint(self, path: PathLike) -> Path:
        """Write :meth:`checkpoint_state` atomically (rank 0 only calls this)."""
        path = save_atomic(self.checkpoint_state(), path)
        logger.debug("Wrote %s", path)
        return path

    def _finish(self, interrupted: bool) -> None:
        if self.dist.is_main and self._setup_done:
            if self.cfg.plots and self.metrics.records:
                try:
                    plot_curves(self.metrics.records, self.out_dir / "curves.png")
                except (OSError, ValueError, RuntimeError) as e:  # a plot must never lose a finished run
                    logger.warning("Could not draw curves.png: %s", e)
            self.metrics.close()
        for cb in self.callbacks:
            cb.on_train_end(self, interrupted)

    def _result(self, interrupted: bool) -> TrainResult:
        best = self.out_dir / "best.pt"
        last = self.out_dir / "last.pt"
        return TrainResult(out_dir=self.out_dir, epochs_done=self.epoch, iteration=self.iteration,
                           best_ap=self.best_ap, best_epoch=self.best_epoch, best_result=self.best_result,
                           last_checkpoint=last if last.is_file() else None,
                           best_checkpoint=best if best.is_file() else None,
                           records=list(self.metrics.records) if self.dist.is_main else [],
                           interrupted=interrupted)


def _format_seconds(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
