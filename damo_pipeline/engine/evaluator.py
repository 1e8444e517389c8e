"""COCO-style evaluation with pycocotools, as the official trainer and ``tools/eval.py`` do it.

``spec/training.md`` §8 and ``spec/architecture.md`` §7–§8: the model (the EMA during training) runs on
the evaluation pipeline (RGB, resize to the network size, 0..255), the official post-processing
(:func:`damo_pipeline.ops.torch_nms.multiclass_nms` with the model's thresholds, at most 500 detections) is
applied, boxes are rescaled per axis to original-image pixels (no clipping), converted to COCO
``[x, y, w, h]`` with the dataset's category ids, and scored with ``COCOeval(iouType="bbox")`` with its
default parameters (so only the top 100 detections per image count).

:class:`COCOEvaluator` stands alone (``recipes/evaluate.py`` uses it) and shards the images over
processes in ``torchrun`` runs, gathering detections on every rank.
"""
from __future__ import annotations

import contextlib
import io
import json
import logging
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

import torch
from torch import nn

from ..ops.torch_nms import multiclass_nms
from .distributed import DistContext, all_gather_objects, broadcast_object

logger = logging.getLogger(__name__)

__all__ = ["COCOEvaluator", "EvalResult", "METRIC_NAMES", "coco_evaluate", "detections_to_coco", "rescale_boxes"]

METRIC_NAMES = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")


@dataclass
class EvalResult:
    """pycocotools bbox metrics.

    Attributes:
        metrics: ``AP`` (mAP@[.5:.95]), ``AP50``, ``AP75``, ``APs/APm/APl`` and the ``AR*`` recalls, each
            in [0, 1]; -1 where pycocotools has nothing to score (e.g. no small objects).
        per_class: AP@[.5:.95] per class name (None when the class has no ground truth in the split).
        per_class_ap50: AP@.5 per class name.
        num_images: images evaluated.
        num_detections: detections submitted (after NMS).
    """

    metrics: Dict[str, float]
    per_class: Dict[str, Optional[float]] = field(default_factory=dict)
    per_class_ap50: Dict[str, Optional[float]] = field(default_factory=dict)
    num_images: int = 0
    num_detections: int = 0

    @property
    def ap(self) -> float:
        return float(self.metrics.get("AP", 0.0))

    @property
    def ap50(self) -> float:
        return float(self.metrics.get("AP50", 0.0))

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "EvalResult":
        return cls(**data)

    def table(self) -> str:
        """A Markdown table: the summary metrics, then AP and AP50 per class."""
        lines = ["| metric | value |", "|---|---|"]
        lines += [f"| {name} | {self.metrics[name]:.4f} |" for name in METRIC_NAMES if name in self.metrics]
        if self.per_class:
            lines += ["", "| class | AP | AP50 |", "|---|---|---|"]
            for name, value in self.per_class.items():
                ap50 = self.per_class_ap50.get(name)
                lines.append(f"| {name} | {_fmt(value)} | {_fmt(ap50)} |")
        return "\n".join(lines)

    def save(self, path: Union[str, Path], extra: Optional[Dict[str, Any]] = None) -> Path:
        """Write ``to_dict()`` (plus ``extra``) as JSON, atomically."""
        path = Path(path)
        payload = {**self.to_dict(), **(extra or {})}
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(payload, indent=2) + "\n")
        os.replace(tmp, path)
        return path


def _fmt(value: Optional[float]) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def rescale_boxes(boxes: torch.Tensor, target: Dict[str, Any], input_hw: Sequence[int]) -> torch.Tensor:
    """Network-input xyxy boxes -> original-image pixels, per axis, without clipping.

    Uses the target's ``scale`` ``(sx, sy)`` (network pixels per original pixel) and optional ``pad``
    ``(left, top)`` when present; otherwise ``orig_size`` ``(h, w)`` against ``input_hw`` (the stretch
    resize: ``sx = W_in / w``).
    """
    if "scale" in target and target["scale"] is not None:
        sx, sy = (float(v) for v in target["scale"])
    else:
        h, w = (float(v) for v in target["orig_size"])
        sx, sy = float(input_hw[1]) / w, float(input_hw[0]) / h
    pad = target.get("pad")
    out = boxes.clone().float()
    if pad is not None:
        out[:, 0::2] -= float(pad[0])
        out[:, 1::2] -= float(pad[1])
    if sx == sy:
        return out / sx
    out[:, 0::2] /= sx
    out[:, 1::2] /= sy
    return out


def detections_to_coco(boxes: torch.Tensor, scores: torch.Tensor, labels: torch.Tensor, image_id: int,
                       category_ids: Sequence[Optional[int]]) -> List[Dict[str, Any]]:
    """COCO result dicts (``image_id``, ``category_id``, ``bbox`` [x, y, w, h], ``score``) for one image.

    Args:
        boxes: ``[D, 4]`` xyxy in original-image pixels.
        scores: ``[D]``.
        labels: ``[D]`` 0-based class indices, mapped through ``category_ids`` (None: dropped).
    """
    xyxy = boxes.detach().cpu().double().numpy()
    out = []
    for (x1, y1, x2, y2), score, label in zip(xyxy, scores.detach().cpu().tolist(), labels.cpu().tolist()):
        if category_ids[int(label)] is None:
            continue
        out.append({"image_id": int(image_id), "category_id": int(category_ids[int(label)]),
                    "bbox": [float(x1), float(y1), float(x2 - x1), float(y2 - y1)], "score": float(score)})
    return out


def coco_evaluate(coco_gt: Any, detections: List[Dict[str, Any]],
                  image_ids: Optional[Sequence[int]] = None) -> EvalResult:
    """Score COCO-format detections against a pycocotools ``COCO`` ground truth.

    Args:
        coco_gt: ``pycocotools.coco.COCO`` with the ground truth (``dataset.to_coco_gt()``).
        detections: result dicts as :func:`detections_to_coco` makes.
        image_ids: restrict to these images (default: every image of ``coco_gt``).

    Returns:
        :class:`EvalResult` with class names from ``coco_gt``'s categories.
    """
    from pycocotools.cocoeval import COCOeval

    cat_ids = sorted(coco_gt.getCatIds())
    names = {cid: str(coco_gt.cats[cid]["name"]) for cid in cat_ids}
    image_ids = sorted(coco_gt.getImgIds()) if image_ids is None else sorted(int(i) for i in image_ids)
    has_gt = {cid: len(coco_gt.getAnnIds(catIds=[cid], imgIds=image_ids, iscrowd=False)) > 0 for cid in cat_ids}
    if not detections:
        zero = {name: (0.0 if any(has_gt.values()) else -1.0) for name in METRIC_NAMES}
        per_class = {names[c]: (0.0 if has_gt[c] else None) for c in cat_ids}
        logger.info("No detections above the score threshold: every AP is 0.")
        return EvalResult(zero, per_class, dict(per_class), len(image_ids), 0)
    captured = io.StringIO()
    with contextlib.redirect_stdout(captured):  # pycocotools prints its progress and summary
        coco_dt = coco_gt.loadRes([dict(d) for d in detections])
        evaluator = COCOeval(coco_gt, coco_dt, iouType="bbox")
        evaluator.params.imgIds = list(image_ids)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    logger.debug("pycocotools:\n%s", captured.getvalue())
    metrics = {name: float(v) for name, v in zip(METRIC_NAMES, evaluator.stats)}
    precision = evaluator.eval["precision"]  # [T iou, R recall, K class, A area, M maxdets]
    per_class: Dict[str, Optional[float]] = {}
    per_class_ap50: Dict[str, Optional[float]] = {}
    for k, cid in enumerate(evaluator.params.catIds):
        if not has_gt.get(cid, False):
            per_class[names[cid]] = per_class_ap50[names[cid]] = None
            continue
        p = precision[:, :, k, 0, -1]
        valid = p[p > -1]
        per_class[names[cid]] = float(valid.mean()) if valid.size else 0.0
        p50 = precision[0, :, k, 0, -1]
        valid50 = p50[p50 > -1]
        per_class_ap50[names[cid]] = float(valid50.mean()) if valid50.size else 0.0
    return EvalResult(metrics, per_class, per_class_ap50, len(image_ids), len(detections))


class COCOEvaluator:
    """Runs a detector over an evaluation dataset and scores it with pycocotools.

    Args:
        dataset: an evaluation dataset (``damo_pipeline.data.EvalDataset``): items are samples that
            ``collate_fn`` batches into ``(images [N, 3, S, S], targets)`` where each target has
            ``image_id``, ``orig_size`` ``(h, w)`` and optionally ``scale``/``pad`` (see
            :func:`rescale_boxes`); it exposes the ground truth as ``to_coco_gt()`` (or via ``.dataset``)
            and the label -> COCO id mapping as ``category_ids``.
        batch_size: images per forward pass per process.
        workers: data-loading worker processes.
        score_threshold / iou_threshold / max_detections: post-processing; ``None`` = the model config's.
        collate_fn: batches samples; default ``damo_pipeline.data.collate_detection``.
        dist: process context; default single process.
        progress: show a tqdm bar (only on the main process and a TTY).
        category_ids: model label -> COCO category id, when the model's classes are not the dataset's
            (``None`` entries drop that label); default the dataset's ``category_ids``.

    Images whose target says ``"valid": False`` (unreadable files) are left out of the scoring, with a
    warning, instead of counting their ground truth as misses.
    """

    def __init__(self, dataset: Any, batch_size: int = 32, workers: int = 0,
                 score_threshold: Optional[float] = None, iou_threshold: Optional[float] = None,
                 max_detections: Optional[int] = None, collate_fn: Optional[Callable] = None,
                 dist: Optional[DistContext] = None, progress: bool = True,
                 category_ids: Optional[Sequence[Optional[int]]] = None) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
        self.dataset = dataset
        self.batch_size = batch_size
        self.workers = workers
        self.score_threshold = score_threshold
        self.iou_threshold = iou_threshold
        self.max_detections = max_detections
        self.collate_fn = collate_fn
        self.dist = dist or DistContext(0, 1, 0, torch.device("cpu"))
        self.progress = progress
        self._category_ids = list(category_ids) if category_ids is not None else None
        self.channels_last = False  # the trainer sets it when the model is in channels_last format
        self._coco_gt = None

    # ------------------------------------------------------------------ data
    @property
    def coco_gt(self) -> Any:
        """The pycocotools ``COCO`` ground truth (built once)."""
        if self._coco_gt is None:
            source = self.dataset if hasattr(self.dataset, "to_coco_gt") else getattr(self.dataset, "dataset", None)
            if source is None or not hasattr(source, "to_coco_gt"):
                raise TypeError("The evaluation dataset must provide to_coco_gt() (directly or via .dataset).")
            with contextlib.redirect_stdout(io.StringIO()):
                self._coco_gt = source.to_coco_gt()
        return self._coco_gt

    @property
    def category_ids(self) -> List[Optional[int]]:
        """Model label -> COCO category id (None drops the label's detections)."""
        if self._category_ids is not None:
            return self._category_ids
        for source in (self.dataset, getattr(self.dataset, "dataset", None)):
            ids = getattr(source, "category_ids", None)
            if ids is not None:
                return [int(i) for i in ids]
        raise TypeError("The evaluation dataset must provide category_ids (label -> COCO category id).")

    def _collate(self) -> Callable:
        if self.collate_fn is not None:
            return self.collate_fn
        from ..data import collate_detection

        return collate_detection

    def _loader(self) -> torch.utils.data.DataLoader:
        indices = list(range(self.dist.rank, len(self.dataset), self.dist.world_size))
        subset = torch.utils.data.Subset(self.dataset, indices)
        return torch.utils.data.DataLoader(subset, batch_size=self.batch_size, shuffle=False,
                                           num_workers=self.workers, collate_fn=self._collate(),
                                           pin_memory=self.dist.device.type == "cuda")

    # ------------------------------------------------------------- running
    @torch.no_grad()
    def predict(self, model: nn.Module, device: Optional[torch.device] = None,
                autocast: Optional[Callable[[], Any]] = None) -> List[Dict[str, Any]]:
        """COCO-format detections of this process's share of the images (original-image pixels).

        The model is put in eval mode for the pass and restored to its previous mode afterwards. Ids of
        images that could not be read are collected in ``self.invalid_image_ids``.
        """
        self.invalid_image_ids: List[int] = []
        device = device or self.dist.device
        config = getattr(model, "config", None)
        score_thr = self.score_threshold if self.score_threshold is not None else getattr(config, "score_threshold", 0.05)
        iou_thr = self.iou_threshold if self.iou_threshold is not None else getattr(config, "iou_threshold", 0.7)
        max_det = self.max_detections if self.max_detections is not None else getattr(config, "max_detections", 500)
        category_ids = self.category_ids
        was_training = model.training
        model.eval()
        detections: List[Dict[str, Any]] = []
        loader = self._loader()
        bar = None
        if self.progress and self.dist.is_main:
            from tqdm import tqdm

            bar = tqdm(total=len(loader), desc="eval", leave=False, disable=None)
        try:
            for images, targets in loader:
                images = images.to(device, non_blocking=True).float()
                if self.channels_last:
                    images = images.contiguous(memory_format=torch.channels_last)
                with (autocast() if autocast is not None else contextlib.nullcontext()):
                    scores, boxes = model(images)
                scores, boxes = scores.float(), boxes.float()
                for i, target in enumerate(targets):
                    if not target.get("valid", True):
                        self.invalid_image_ids.append(int(target["image_id"]))
                        continue
                    det_boxes, det_scores, det_labels = multiclass_nms(scores[i], boxes[i], score_thr, iou_thr, max_det)
                    det_boxes = rescale_boxes(det_boxes, target, images.shape[-2:])
                    detections += detections_to_coco(det_boxes, det_scores, det_labels, int(target["image_id"]),
                                                      category_ids)
                if bar is not None:
                    bar.update(1)
        finally:
            if bar is not None:
                bar.close()
            model.train(was_training)
        return detections

    def evaluate(self, model: nn.Module, device: Optional[torch.device] = None,
                 autocast: Optional[Callable[[], Any]] = None,
                 detections_path: Optional[Union[str, Path]] = None) -> EvalResult:
        """Predict on every image (sharded over processes), gather, score on rank 0, share the result.

        Args:
            model: a detector whose eval-mode forward returns ``(scores [N, A, K], boxes [N, A, 4])``.
            device: where to run; default the process's device.
            autocast: optional mixed-precision context factory.
            detections_path: also write the COCO-format detections (JSON) here.
        """
        local = self.predict(model, device, autocast)
        gathered = all_gather_objects((local, self.invalid_image_ids), self.dist)
        result = None
        if self.dist.is_main:
            detections = [d for part, _ in gathered for d in part]
            invalid = {i for _, ids in gathered for i in ids}
            image_ids = None
            if invalid:
                logger.warning("%d unreadable evaluation image(s) left out of the scoring: ids %s", len(invalid),
                               sorted(invalid)[:20])
                image_ids = [i for i in self.coco_gt.getImgIds() if i not in invalid]
            detections.sort(key=lambda d: (d["image_id"], -d["score"]))
            if detections_path is not None:
                path = Path(detections_path)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(json.dumps(detections))
            result = coco_evaluate(self.coco_gt, detections, image_ids)
            logger.info("Evaluation: AP %.4f, AP50 %.4f, AP75 %.4f over %d images (%d detections)",
                        result.ap, result.ap50, result.metrics.get("AP75", math.nan), result.num_images,
                        result.num_detections)
        return broadcast_object(result, self.dist)

