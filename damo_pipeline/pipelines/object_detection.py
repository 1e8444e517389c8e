"""The torch engine of object detection: images in, :class:`DetectionResult` out, official DAMO-YOLO rules.

The stages shared with the exported-graph engines (decoding, resizing, options, results) are in
:mod:`.detection`; this module prepares the fused torch model and runs it under ``torch.inference_mode()`` with
vectorised torch NMS (:func:`damo_pipeline.ops.multiclass_nms`).
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
from ..ops.torch_nms import multiclass_nms
from .detection import ClassSpec, DetectionStages, ModelDefaults
from .inputs import DEFAULT_MAX_DOWNLOAD_BYTES, DEFAULT_URL_TIMEOUT
from .results import DetectionResult
from .torch_pipeline import DeviceLike, Pipeline

logger = logging.getLogger(__name__)

__all__ = ["ObjectDetectionPipeline", "prepare_detector"]



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


class ObjectDetectionPipeline(DetectionStages, Pipeline):
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
        channels_last: NHWC network and input (default on CPU, where it is 1.4-1.7x faster; see
            :class:`~damo_pipeline.pipelines.Pipeline`).
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
                 local_files_only: Optional[bool] = None, channels_last: Optional[bool] = None) -> None:
        detector = prepare_detector(model, checkpoint, revision=revision, token=token, cache_dir=cache_dir,
                                    local_files_only=local_files_only)
        self.config = detector.config
        defaults = self._detection_options(
            ModelDefaults.from_config(detector.config), score_threshold=score_threshold, iou_threshold=iou_threshold,
            max_detections=max_detections, classes=classes, img_size=img_size, resize=resize,
            color_order=color_order, exif_transpose=exif_transpose, clip_boxes=clip_boxes, keep_image=keep_image,
            timeout=timeout, max_download_bytes=max_download_bytes)
        super().__init__(detector, device=device, half=half, batch_size=batch_size, channels_last=channels_last,
                         **defaults)

    # -- stages ---------------------------------------------------------------------------------------------------
    def _forward(self, model: nn.Module, model_inputs: Dict[str, torch.Tensor], **forward_params: Any
                 ) -> Dict[str, torch.Tensor]:
        """``[N, H, W, 3]`` uint8 -> float 0..255 NCHW -> ``scores [N, A, K]``, ``boxes [N, A, 4]`` (input pixels)."""
        dtype = next(model.parameters()).dtype
        pixels = model_inputs["pixel_values"]
        # [N, H, W, 3] viewed as NCHW is already channels-last in memory; NCHW-contiguous is the official layout.
        images = pixels.permute(0, 3, 1, 2).to(dtype).contiguous(memory_format=self.memory_format(pixels.device))
        scores, boxes = model(images)
        return {"scores": scores.float(), "boxes": boxes.float()}

    def postprocess(self, model_outputs: Dict[str, Any], score_threshold: float = 0.05, iou_threshold: float = 0.7,
                    max_detections: int = 500, classes: Optional[np.ndarray] = None, clip_boxes: bool = True,
                    keep_image: bool = True) -> DetectionResult:
        """Official multiclass NMS (torch, on the model's device), then the shared result building."""
        scores, boxes = model_outputs["scores"][0], model_outputs["boxes"][0]
        class_ids = None
        if classes is not None:
            class_ids = torch.from_numpy(classes).to(scores.device)
            scores = scores.index_select(1, class_ids)
        kept_boxes, kept_scores, kept_labels = multiclass_nms(scores, boxes, score_threshold, iou_threshold,
                                                              max_detections)
        if class_ids is not None:
            kept_labels = class_ids[kept_labels]
        return self._build_result(kept_boxes.cpu().numpy(), kept_scores.cpu().numpy(), kept_labels.cpu().numpy(),
                                  model_outputs, clip_boxes, keep_image)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(model={self.config.name!r}, classes={len(self.class_names)}, "
                f"device={str(self.device)!r}, half={self.half})")
