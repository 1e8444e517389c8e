"""``ObjectDetectionPipeline``: images in, :class:`DetectionResult` out, with the official DAMO-YOLO inference rules.

Per image (``spec/architecture.md`` §7 and §8):

1. decode to uint8 RGB (:mod:`.inputs`);
2. resize with ``cv2.INTER_LINEAR`` on the uint8 array: ``"stretch"`` to ``img_size`` (official default) or
   ``"letterbox"`` (keep ratio, zero pad bottom/right: legacy checkpoints) (:mod:`damo_pipeline.ops.resize`);
3. float 0..255 NCHW, no normalisation, through the fused network under ``torch.inference_mode()``;
4. candidates = (anchor, class) pairs scoring strictly above ``score_threshold``; class-aware NMS (IoU strictly
   above ``iou_threshold`` suppresses); the best ``max_detections`` (:func:`damo_pipeline.ops.multiclass_nms`);
5. boxes scaled back per axis to the original image, then clipped to it (the official flow does not clip; pass
   ``clip_boxes=False`` for its raw boxes).
"""
from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Tuple, Union

import numpy as np
import torch
from torch import nn

from ..models import Detector, load_checkpoint
from ..ops.nms import multiclass_nms
from ..ops.resize import RESIZE_MODES, as_size, rescale_boxes, resize_image
from .base import DeviceLike, Pipeline
from .inputs import DEFAULT_MAX_DOWNLOAD_BYTES, DEFAULT_URL_TIMEOUT, ImageLoadOptions, load_image
from .results import DetectionResult

logger = logging.getLogger(__name__)

__all__ = ["ObjectDetectionPipeline", "prepare_detector"]

PREPROCESS_PARAMS = ("img_size", "resize", "color_order", "exif_transpose", "timeout", "max_download_bytes")
POSTPROCESS_PARAMS = ("score_threshold", "iou_threshold", "max_detections", "classes", "clip_boxes", "keep_image")
ClassSpec = Union[str, int]


def prepare_detector(model: Union[str, Path, Detector], checkpoint: Optional[Union[str, Path]] = None,
                     **load_options: Any) -> Detector:
    """The inference form of ``model``: weights loaded, eval mode, fused, no gradients.

    Args:
        model: a ``Detector`` (copied, so the caller's module is left untouched), or anything
            :func:`damo_pipeline.hub.load_detector` accepts (zoo id with ``checkpoint``, checkpoint file, hub
            folder, hub id).
        checkpoint: weights for a zoo id, or for a ``Detector`` instance still in training form.
        **load_options: passed to :func:`damo_pipeline.hub.load_detector` when given (``revision``, ``token``,
            ``cache_dir``, ``local_files_only``); ``None`` values are dropped.

    Raises:
        TypeError: ``model`` is neither a str/Path nor a Detector.
        FileNotFoundError (WeightsNotFoundError): no weights found; the message says where it looked.
    """
    if isinstance(model, Detector):
        given = sorted(k for k, v in load_options.items() if v is not None)
        if given:
            raise ValueError(f"{given} only apply when model= names weights to load, not to a built Detector.")
        detector = copy.deepcopy(model)
        if checkpoint is not None:
            load_checkpoint(detector, checkpoint)
    elif isinstance(model, (str, Path)):
        from ..hub import load_detector

        detector = load_detector(model, checkpoint, **{k: v for k, v in load_options.items() if v is not None})
    else:
        raise TypeError(f"model must be a zoo id, a hub id, a checkpoint file or folder path, or a Detector; "
                        f"got {type(model).__name__}.")
    detector.eval()
    detector.fuse()
    detector.requires_grad_(False)
    return detector


class ObjectDetectionPipeline(Pipeline):
    """Detect objects with a DAMO-YOLO detector the way the official demo does.

    Every option can be given at construction (the default for every call) and again per call
    (``detector(image, score_threshold=0.5)``); ``None`` means "not given".

    Args:
        model: zoo id, hub id, hub-format folder, checkpoint file (``.pth``/``.pt``/``.safetensors``) or a
            ``Detector`` (see :func:`prepare_detector`).
        checkpoint: weights for a zoo id or a ``Detector``.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``; default CUDA when available.
        half: float16 network on CUDA (``ValueError`` on CPU, where float16 convolutions are slow or missing).
        batch_size: images per forward pass for lists and streams (default 1).
        score_threshold: keep (anchor, class) pairs scoring strictly above this; default the model's official
            ``nms_conf_thre`` (0.05, Nano 0.03), which keeps low-confidence boxes as the official evaluation does.
            Use 0.3-0.5 for display.
        iou_threshold: class-aware NMS threshold (default 0.7, Nano 0.65, as upstream).
        max_detections: detections kept per image (default 500, as upstream).
        classes: class names and/or ids to keep (default all).
        img_size: network input size, an int or ``(height, width)``, multiples of 32 (default the model's native
            640, Nano 416).
        resize: ``"stretch"`` (official, default) or ``"letterbox"`` (default for legacy 81-channel checkpoints).
        color_order: channel order of numpy inputs, ``"bgr"`` (default, as OpenCV/ModelScope) or ``"rgb"``.
        exif_transpose: apply EXIF orientation of encoded images (default True; the official demo does not).
        clip_boxes: clip boxes to the image (default True; the official flow does not).
        keep_image: keep the decoded image in each result for ``plot``/``save`` (default True; turn off for long
            lists to save memory).
        timeout: seconds to wait for an image URL's server.
        max_download_bytes: largest image body fetched from a URL.
        revision / token / cache_dir / local_files_only: how hub weights are fetched (construction only; see
            :func:`damo_pipeline.hub.load_detector`). Tokens are never logged.
    """

    task = "image-object-detection"

    def __init__(self, model: Union[str, Path, Detector], checkpoint: Optional[Union[str, Path]] = None, *,
                 device: DeviceLike = None, half: bool = False, batch_size: int = 1,
                 score_threshold: Optional[float] = None, iou_threshold: Optional[float] = None,
                 max_detections: Optional[int] = None, classes: Optional[Iterable[ClassSpec]] = None,
                 img_size: Optional[Union[int, Tuple[int, int]]] = None, resize: Optional[str] = None,
                 color_order: str = "bgr", exif_transpose: bool = True, clip_boxes: bool = True,
                 keep_image: bool = True, timeout: float = DEFAULT_URL_TIMEOUT,
                 max_download_bytes: int = DEFAULT_MAX_DOWNLOAD_BYTES, revision: Optional[str] = None,
                 token: Optional[str] = None, cache_dir: Optional[Union[str, Path]] = None,
                 local_files_only: Optional[bool] = None) -> None:
        detector = prepare_detector(model, checkpoint, revision=revision, token=token, cache_dir=cache_dir,
                                    local_files_only=local_files_only)
        config = detector.config
        self.config = config
        self.class_names: List[str] = list(config.class_names)
        legacy = bool(config.head.get("legacy", False))
        if resize is None and legacy and config.resize == "stretch":
            logger.info("Legacy (81-channel) checkpoint: using the keep-ratio 'letterbox' resize it was trained with.")
        defaults = dict(
            score_threshold=config.score_threshold if score_threshold is None else score_threshold,
            iou_threshold=config.iou_threshold if iou_threshold is None else iou_threshold,
            max_detections=config.max_detections if max_detections is None else max_detections,
            classes=classes,
            img_size=config.img_size if img_size is None else img_size,
            resize=resize or ("letterbox" if legacy else config.resize),
            color_order=color_order, exif_transpose=exif_transpose, clip_boxes=clip_boxes, keep_image=keep_image,
            timeout=timeout, max_download_bytes=max_download_bytes,
        )
        super().__init__(detector, device=device, half=half, batch_size=batch_size, **defaults)

    # -- options --------------------------------------------------------------------------------------------------
    def _sanitize_parameters(self, **kwargs: Any) -> Tuple[Dict[str, Any], Dict[str, Any], Dict[str, Any]]:
        unknown = sorted(set(kwargs) - set(PREPROCESS_PARAMS) - set(POSTPROCESS_PARAMS))
        if unknown:
            raise TypeError(f"Unknown option(s) {unknown} for {type(self).__name__}; known options: "
                            f"{sorted(PREPROCESS_PARAMS + POSTPROCESS_PARAMS + ('device', 'half', 'batch_size'))}.")
        given = {k: v for k, v in kwargs.items() if v is not None}
        pre: Dict[str, Any] = {}
        post: Dict[str, Any] = {}
        if "img_size" in given:
            pre["img_size"] = as_size(given["img_size"])
        if "resize" in given:
            if given["resize"] not in RESIZE_MODES:
                raise ValueError(f"resize must be one of {RESIZE_MODES}, got {given['resize']!r}.")
            pre["resize"] = given["resize"]
        load_fields = {k: given[k] for k in ("color_order", "exif_transpose", "timeout", "max_download_bytes")
                       if k in given}
        if load_fields:
            ImageLoadOptions(**load_fields)  # validates now rather than on the first image
            pre.update(load_fields)
        for key in ("score_threshold", "iou_threshold"):
            if key in given:
                post[key] = _check_fraction(key, given[key])
        if "max_detections" in given:
            value = given["max_detections"]
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"max_detections must be a positive int, got {value!r}.")
            post["max_detections"] = value
        if "classes" in given:
            post["classes"] = self._class_ids(given["classes"])
        for key in ("clip_boxes", "keep_image"):
            if key in given:
                post[key] = bool(given[key])
        return pre, {}, post

    def _class_ids(self, classes: Union[ClassSpec, Iterable[ClassSpec]]) -> torch.Tensor:
        """Sorted unique int64 ids of ``classes`` (names or ids), checked against the model's classes."""
        items = [classes] if isinstance(classes, (str, int, np.integer)) else list(classes)
        index = {name: i for i, name in enumerate(self.class_names)}
        ids, bad = set(), []
        for item in items:
            if isinstance(item, str) and item in index:
                ids.add(index[item])
            elif isinstance(item, (int, np.integer)) and not isinstance(item, bool) and 0 <= item < len(index):
                ids.add(int(item))
            else:
                bad.append(item)
        if bad or not ids:
            shown = ", ".join(self.class_names[:12]) + (", ..." if len(self.class_names) > 12 else "")
            raise ValueError(f"classes {bad or items!r} are not classes of this model: use names ({shown}) or ids "
                             f"0..{len(self.class_names) - 1}.")
        return torch.tensor(sorted(ids), dtype=torch.int64)

    # -- stages ---------------------------------------------------------------------------------------------------
    def preprocess(self, inputs: Any, img_size: Tuple[int, int] = (640, 640), resize: str = "stretch",
                   **load_options: Any) -> Dict[str, Any]:
        """Decode and resize one image.

        Returns:
            ``pixel_values``: ``[1, H_in, W_in, 3]`` uint8 RGB network input (made NCHW float on the device);
            ``original_size`` / ``resized_size``: ``(height, width)`` of the image and of its resized copy inside
            the input; ``source``, ``frame_index``, ``image`` (the decoded ``[H, W, 3]`` uint8 RGB).
        """
        loaded = load_image(inputs, ImageLoadOptions(**load_options))
        canvas, resized_size = resize_image(loaded.rgb, img_size, resize)
        return {
            "pixel_values": torch.from_numpy(canvas).unsqueeze(0),
            "original_size": loaded.size,
            "resized_size": resized_size,
            "source": loaded.source,
            "frame_index": loaded.frame_index,
            "image": loaded.rgb,
        }

    def _forward(self, model: nn.Module, model_inputs: Dict[str, torch.Tensor], **forward_params: Any
                 ) -> Dict[str, torch.Tensor]:
        """``[N, H, W, 3]`` uint8 -> float 0..255 NCHW -> ``scores [N, A, K]``, ``boxes [N, A, 4]`` (input pixels)."""
        dtype = next(model.parameters()).dtype
        # NCHW-contiguous like the official tensor: a channels-last view would take other conv kernels.
        images = model_inputs["pixel_values"].permute(0, 3, 1, 2).to(dtype).contiguous()
        scores, boxes = model(images)
        return {"scores": scores.float(), "boxes": boxes.float()}

    def postprocess(self, model_outputs: Dict[str, Any], score_threshold: float = 0.05, iou_threshold: float = 0.7,
                    max_detections: int = 500, classes: Optional[torch.Tensor] = None, clip_boxes: bool = True,
                    keep_image: bool = True) -> DetectionResult:
        """Official multiclass NMS, back-projection to the original image, class names."""
        scores, boxes = model_outputs["scores"][0], model_outputs["boxes"][0]
        if classes is not None:
            classes = classes.to(scores.device)
            scores = scores.index_select(1, classes)
        kept_boxes, kept_scores, kept_labels = multiclass_nms(scores, boxes, score_threshold, iou_threshold,
                                                              max_detections)
        if classes is not None:
            kept_labels = classes[kept_labels]
        kept_boxes = rescale_boxes(kept_boxes, model_outputs["resized_size"], model_outputs["original_size"],
                                   clip=clip_boxes)
        label_ids = kept_labels.cpu().numpy().astype(np.int64)
        names = np.asarray(self.class_names, dtype=object)[label_ids].tolist()
        return DetectionResult(kept_scores.cpu().numpy(), names, kept_boxes.cpu().numpy(), label_ids,
                               image_size=model_outputs["original_size"], source=model_outputs["source"],
                               image=model_outputs["image"] if keep_image else None,
                               frame_index=model_outputs["frame_index"])

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(model={self.config.name!r}, classes={len(self.class_names)}, "
                f"device={str(self.device)!r}, half={self.half})")


def _check_fraction(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}.")
    return float(value)
