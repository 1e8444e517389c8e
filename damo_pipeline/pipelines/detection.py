"""Object detection stages shared by every engine: options, decoding + resizing, and building the result.

Per image (``spec/architecture.md`` §7 and §8):

1. decode to uint8 RGB (:mod:`.inputs`);
2. resize with ``cv2.INTER_LINEAR`` on the uint8 array: ``"stretch"`` to ``img_size`` (official default) or
   ``"letterbox"`` (keep ratio, zero pad bottom/right: legacy checkpoints) (:mod:`damo_pipeline.ops.resize`);
3. the network (the engine's part) on float 0..255 NCHW, no normalisation;
4. candidates = (anchor, class) pairs scoring strictly above ``score_threshold``; class-aware NMS (IoU strictly
   above ``iou_threshold`` suppresses); the best ``max_detections``;
5. boxes scaled back per axis to the original image, then clipped to it (the official flow does not clip; pass
   ``clip_boxes=False`` for its raw boxes).

Nothing here imports torch.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple, Union

import numpy as np

from ..ops.resize import RESIZE_MODES, as_size, rescale_boxes, resize_image
from .inputs import DEFAULT_MAX_DOWNLOAD_BYTES, DEFAULT_URL_TIMEOUT, ImageLoadOptions, load_image
from .results import DetectionResult

logger = logging.getLogger(__name__)

__all__ = ["DetectionStages", "ModelDefaults", "PREPROCESS_PARAMS", "POSTPROCESS_PARAMS"]

PREPROCESS_PARAMS = ("img_size", "resize", "color_order", "exif_transpose", "timeout", "max_download_bytes")
POSTPROCESS_PARAMS = ("score_threshold", "iou_threshold", "max_detections", "classes", "clip_boxes", "keep_image")
ClassSpec = Union[str, int]


@dataclass(frozen=True)
class ModelDefaults:
    """What a detector brings to the pipeline: its classes and its official inference settings."""

    name: str
    class_names: Tuple[str, ...]
    img_size: Union[int, Tuple[int, int]]
    resize: str = "stretch"
    score_threshold: float = 0.05
    iou_threshold: float = 0.7
    max_detections: int = 500
    legacy: bool = False

    @classmethod
    def from_config(cls, config: Any) -> "ModelDefaults":
        """From a :class:`damo_pipeline.models.ModelConfig`."""
        return cls(config.name, tuple(config.class_names), config.img_size, config.resize, config.score_threshold,
                   config.iou_threshold, config.max_detections, bool(config.head.get("legacy", False)))

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any]) -> "ModelDefaults":
        """From the metadata of an exported graph (:func:`damo_pipeline.export.read_metadata`)."""
        defaults = metadata.get("model_defaults", {})
        return cls(metadata.get("architecture", "?"), tuple(metadata["class_names"]), metadata["img_size"],
                   metadata.get("resize", "stretch"), defaults.get("score_threshold", 0.05),
                   defaults.get("iou_threshold", 0.7), defaults.get("max_detections", 500),
                   bool(defaults.get("legacy", False)))


class DetectionStages:
    """The engine-independent stages of object detection (mixed into each engine's pipeline class).

    The engine's class calls :meth:`_detection_options` to turn its constructor's options into task defaults,
    implements the forward pass (outputs ``scores [N, A, K]`` and ``boxes [N, A, 4]`` in input pixels), and
    ends its ``postprocess`` with :meth:`_build_result`.
    """

    class_names: List[str]

    def _detection_options(self, model: ModelDefaults, *, score_threshold: Optional[float],
                           iou_threshold: Optional[float], max_detections: Optional[int],
                           classes: Optional[Iterable[ClassSpec]], img_size: Any, resize: Optional[str],
                           color_order: str = "bgr", exif_transpose: bool = True, clip_boxes: bool = True,
                           keep_image: bool = True, timeout: float = DEFAULT_URL_TIMEOUT,
                           max_download_bytes: int = DEFAULT_MAX_DOWNLOAD_BYTES) -> Dict[str, Any]:
        """The task options with the model's defaults filled in (``None`` means "the model's")."""
        self.class_names = list(model.class_names)
        if resize is None and model.legacy and model.resize == "stretch":
            logger.info("Legacy (81-channel) checkpoint: using the keep-ratio 'letterbox' resize it was trained with.")
        return dict(
            score_threshold=model.score_threshold if score_threshold is None else score_threshold,
            iou_threshold=model.iou_threshold if iou_threshold is None else iou_threshold,
            max_detections=model.max_detections if max_detections is None else max_detections,
            classes=classes,
            img_size=model.img_size if img_size is None else img_size,
            resize=resize or ("letterbox" if model.legacy else model.resize),
            color_order=color_order, exif_transpose=exif_transpose, clip_boxes=clip_boxes, keep_image=keep_image,
            timeout=timeout, max_download_bytes=max_download_bytes,
        )

    def _runtime_option_names(self) -> Tuple[str, ...]:
        return tuple(self._runtime_defaults())  # type: ignore[attr-defined]

    def _sanitize_parameters(self, **kwargs: Any) -> Tuple[Dict[str, Any], Dict[str, Any], Dict[str, Any]]:
        unknown = sorted(set(kwargs) - set(PREPROCESS_PARAMS) - set(POSTPROCESS_PARAMS))
        if unknown:
            known = sorted(PREPROCESS_PARAMS + POSTPROCESS_PARAMS + self._runtime_option_names())
            raise TypeError(f"Unknown option(s) {unknown} for {type(self).__name__}; known options: {known}.")
        given = {k: v for k, v in kwargs.items() if v is not None}
        pre: Dict[str, Any] = {}
        post: Dict[str, Any] = {}
        if "img_size" in given:
            pre["img_size"] = self._check_img_size(as_size(given["img_size"]))
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
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"max_detections must be a positive int, got {value!r}.")
            post["max_detections"] = int(value)
        if "classes" in given:
            post["classes"] = self._class_ids(given["classes"])
        for key in ("clip_boxes", "keep_image"):
            if key in given:
                post[key] = bool(given[key])
        return pre, {}, post

    def _check_img_size(self, size: Tuple[int, int]) -> Tuple[int, int]:
        """Engines with a fixed input size refuse others here."""
        return size

    def _class_ids(self, classes: Union[ClassSpec, Iterable[ClassSpec]]) -> np.ndarray:
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
        return np.array(sorted(ids), dtype=np.int64)

    def preprocess(self, inputs: Any, img_size: Tuple[int, int] = (640, 640), resize: str = "stretch",
                   **load_options: Any) -> Dict[str, Any]:
        """Decode and resize one image.

        Returns:
            ``pixel_values``: ``[1, H_in, W_in, 3]`` uint8 RGB network input (the engine makes it NCHW float);
            ``original_size`` / ``resized_size``: ``(height, width)`` of the image and of its resized copy inside
            the input; ``source``, ``frame_index``, ``image`` (the decoded ``[H, W, 3]`` uint8 RGB).
        """
        loaded = load_image(inputs, ImageLoadOptions(**load_options))
        canvas, resized_size = resize_image(loaded.rgb, img_size, resize)
        return {
            "pixel_values": canvas[None],
            "original_size": loaded.size,
            "resized_size": resized_size,
            "source": loaded.source,
            "frame_index": loaded.frame_index,
            "image": loaded.rgb,
        }

    def _build_result(self, boxes: np.ndarray, scores: np.ndarray, label_ids: np.ndarray,
                      model_outputs: Dict[str, Any], clip_boxes: bool, keep_image: bool) -> DetectionResult:
        """Back-projection to the original image and class names; inputs are numpy, boxes in input pixels."""
        boxes = rescale_boxes(boxes, model_outputs["resized_size"], model_outputs["original_size"], clip=clip_boxes)
        label_ids = np.asarray(label_ids, dtype=np.int64)
        names = np.asarray(self.class_names, dtype=object)[label_ids].tolist()
        return DetectionResult(scores, names, boxes, label_ids, image_size=model_outputs["original_size"],
                               source=model_outputs["source"],
                               image=model_outputs["image"] if keep_image else None,
                               frame_index=model_outputs["frame_index"])


def _check_fraction(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}.")
    return float(value)
