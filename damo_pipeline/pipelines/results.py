"""The per-image detection result: a dict with the ModelScope keys, plus conversions and drawing.

Schema (every array is numpy, detections sorted by descending score)::

    {
        "scores":    float32 (N,),
        "labels":    list of N class names (str),
        "boxes":     float32 (N, 4), x1, y1, x2, y2 in original-image pixels,
        "label_ids": int64 (N,), 0-based class indices,
    }
"""
from __future__ import annotations

import json
import logging
import os
import uuid
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

logger = logging.getLogger(__name__)

__all__ = ["DetectionResult", "class_color"]

RESULT_KEYS = ("scores", "labels", "boxes", "label_ids")
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")

# 20 well-separated RGB colours; class i gets _PALETTE[i % 20].
_PALETTE = (
    (230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180),
    (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128),
    (220, 190, 255), (170, 110, 40), (255, 225, 25), (128, 0, 0), (170, 255, 195),
    (128, 128, 0), (255, 215, 180), (0, 0, 128), (128, 128, 128), (255, 255, 255),
)


def class_color(label_id: int) -> Tuple[int, int, int]:
    """The RGB colour used for class ``label_id`` in :meth:`DetectionResult.plot`."""
    return _PALETTE[int(label_id) % len(_PALETTE)]


def _float32_list(values: np.ndarray) -> list:
    """float32 values as the shortest decimals that read back to the same float32 (exact JSON round trip)."""
    return [float(text) for text in np.asarray(values, dtype=np.float32).ravel().astype(str)]


class DetectionResult(dict):
    """Detections on one image; a ``dict`` with the keys ``scores``, ``labels``, ``boxes``, ``label_ids``.

    Besides the dict keys it carries ``image_size`` (``(height, width)`` of the original image), ``source`` (a
    description of the input), ``image`` (the decoded ``[H, W, 3]`` uint8 RGB input, used by :meth:`plot`; None
    for results read back from JSON or made with ``keep_image=False``) and ``frame_index`` (position in a video or
    camera stream, else None).
    """

    def __init__(self, scores: np.ndarray, labels: Sequence[str], boxes: np.ndarray, label_ids: np.ndarray, *,
                 image_size: Tuple[int, int], source: str = "", image: Optional[np.ndarray] = None,
                 frame_index: Optional[int] = None) -> None:
        scores = np.asarray(scores, dtype=np.float32).reshape(-1)
        boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
        label_ids = np.asarray(label_ids, dtype=np.int64).reshape(-1)
        labels = [str(label) for label in labels]
        if not len(scores) == len(labels) == len(boxes) == len(label_ids):
            raise ValueError(f"scores, labels, boxes and label_ids must have one entry per detection, got "
                             f"{len(scores)}, {len(labels)}, {len(boxes)} and {len(label_ids)}.")
        super().__init__(scores=scores, labels=labels, boxes=boxes, label_ids=label_ids)
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.source = source
        self.image = image
        self.frame_index = frame_index

    # -- dict behaviour -----------------------------------------------------------------------------------------
    def __eq__(self, other: object) -> bool:
        if not isinstance(other, dict) or set(other) != set(self):
            return False
        return (self["labels"] == list(other["labels"])
                and all(np.array_equal(self[k], np.asarray(other[k])) for k in ("scores", "boxes", "label_ids")))

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        shown = ", ".join(f"{label} {score:.2f}" for label, score in zip(self["labels"][:5], self["scores"][:5]))
        more = ", ..." if self.num_detections > 5 else ""
        source = f"source={self.source!r}, " if self.source else ""
        return f"DetectionResult({source}{self.num_detections} detections: [{shown}{more}])"

    def __reduce__(self) -> Any:
        return (_rebuild, (dict(self), self.image_size, self.source, self.image, self.frame_index))

    @property
    def num_detections(self) -> int:
        """N, the number of detections (``len(result)`` is the number of dict keys, as for any dict)."""
        return int(self["scores"].shape[0])

    def filter(self, min_score: float = 0.0, classes: Optional[Iterable[Union[str, int]]] = None
               ) -> "DetectionResult":
        """A new result with only the detections scoring ``>= min_score`` whose class (name or id) is in ``classes``."""
        keep = self["scores"] >= min_score
        if classes is not None:
            wanted = list(classes)
            keep &= (np.isin(self["label_ids"], [c for c in wanted if not isinstance(c, str)])
                     | np.isin(np.asarray(self["labels"], dtype=object), [c for c in wanted if isinstance(c, str)]))
        index = np.flatnonzero(keep)
        return DetectionResult(self["scores"][index], [self["labels"][i] for i in index], self["boxes"][index],
                               self["label_ids"][index], image_size=self.image_size, source=self.source,
                               image=self.image, frame_index=self.frame_index)

    # -- conversions ------------------------------------------------------------------------------------------
    def to_dict(self) -> Dict[str, Any]:
        """JSON-serialisable dict: the four keys as lists plus ``source``, ``image_size`` {height, width} and, for
        stream frames, ``frame_index``."""
        data: Dict[str, Any] = {"source": self.source}
        if self.frame_index is not None:
            data["frame_index"] = self.frame_index
        return {
            **data,
            "image_size": {"height": self.image_size[0], "width": self.image_size[1]},
            "scores": _float32_list(self["scores"]),
            "labels": list(self["labels"]),
            "boxes": np.asarray(_float32_list(self["boxes"])).reshape(-1, 4).tolist(),
            "label_ids": self["label_ids"].tolist(),
        }

    def to_json(self, indent: Optional[int] = None) -> str:
        """The :meth:`to_dict` form as JSON text; float32 values are written so they read back exactly."""
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "DetectionResult":
        """Rebuild a result (without its image) from :meth:`to_dict` output."""
        size = data.get("image_size") or {}
        return cls(np.asarray(data["scores"], dtype=np.float32), data["labels"],
                   np.asarray(data["boxes"], dtype=np.float32).reshape(-1, 4),
                   np.asarray(data["label_ids"], dtype=np.int64),
                   image_size=(size.get("height", 0), size.get("width", 0)), source=data.get("source", ""),
                   frame_index=data.get("frame_index"))

    @classmethod
    def from_json(cls, text: str) -> "DetectionResult":
        """Rebuild a result (without its image) from :meth:`to_json` text."""
        return cls.from_dict(json.loads(text))

    def to_hf(self) -> List[Dict[str, Any]]:
        """The transformers object-detection output: ``[{"score", "label", "box": {xmin, ymin, xmax, ymax}}]``.

        As in ``transformers.ObjectDetectionPipeline`` the box corners are ints (truncated toward zero); use
        ``result["boxes"]`` for sub-pixel values.
        """
        corners = self["boxes"].astype(np.int64).tolist()
        return [{"score": float(score), "label": label,
                 "box": {"xmin": box[0], "ymin": box[1], "xmax": box[2], "ymax": box[3]}}
                for score, label, box in zip(self["scores"].tolist(), self["labels"], corners)]

    def to_supervision(self) -> Any:
        """A ``supervision.Detections`` (xyxy, confidence, class_id, and ``data["class_name"]``).

        Raises:
            ImportError: ``supervision`` is not installed (it is an optional extra).
        """
        try:
            import supervision as sv
        except ImportError as e:
            raise ImportError("DetectionResult.to_supervision() needs the optional 'supervision' package: "
                              "pip install 'damo_pipeline[supervision]' (or pip install supervision).") from e
        return sv.Detections(xyxy=self["boxes"].copy(), confidence=self["scores"].copy(),
                             class_id=self["label_ids"].astype(int),
                             data={"class_name": np.asarray(self["labels"], dtype=str).reshape(-1)})

    # -- drawing and saving -----------------------------------------------------------------------------------
    def plot(self, image: Optional[np.ndarray] = None, *, min_score: float = 0.0, line_width: Optional[int] = None,
             show_scores: bool = True) -> np.ndarray:
        """Draw the detections: one colour per class, a filled caption ``label score`` per box.

        Args:
            image: ``[H, W, 3]`` uint8 RGB to draw on (default: the image the result was computed on).
            min_score: skip detections scoring below this.
            line_width: box line width in pixels (default: from the image size).
            show_scores: append the score to each caption.

        Returns:
            A new ``[H, W, 3]`` uint8 RGB array.

        Raises:
            ValueError: there is no image (result read from JSON) or it has the wrong shape.
        """
        base = self.image if image is None else np.asarray(image)
        if base is None:
            raise ValueError("This result has no image to draw on (it was read from JSON); pass plot(image=rgb).")
        if base.ndim != 3 or base.shape[2] != 3 or base.dtype != np.uint8:
            raise ValueError(f"plot(image=...) needs an [H, W, 3] uint8 RGB array, got shape {base.shape} "
                             f"dtype {base.dtype}.")
        canvas = np.ascontiguousarray(base).copy()
        height, width = canvas.shape[:2]
        lw = line_width or max(2, int(round(0.002 * (height + width))))
        font_scale = max(0.4, lw / 3.0)
        thickness = max(1, lw - 1)
        order = np.flatnonzero(self["scores"] >= min_score)[::-1]  # best boxes drawn last, on top
        boxes = np.round(self["boxes"][order]).astype(np.int64) if len(order) else np.zeros((0, 4), np.int64)
        for (x1, y1, x2, y2), i in zip(boxes.tolist(), order.tolist()):
            color = class_color(self["label_ids"][i])
            cv2.rectangle(canvas, (x1, y1), (x2, y2), color, lw, cv2.LINE_AA)
            caption = _ascii(self["labels"][i]) + (f" {self['scores'][i]:.2f}" if show_scores else "")
            _draw_caption(canvas, caption, (x1, y1), color, font_scale, thickness)
        return canvas

    def save(self, path: Union[str, Path], **plot_kwargs: Any) -> Path:
        """Write the result: ``.json`` gives :meth:`to_json`, an image suffix gives the :meth:`plot` drawing.

        The file is written atomically (temporary file, then ``os.replace``); missing folders are created.

        Returns:
            The path written.

        Raises:
            ValueError: an unsupported suffix, or no image to draw on.
        """
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix == ".json":
            data = (self.to_json(indent=2) + "\n").encode()
        elif suffix in _IMAGE_SUFFIXES:
            ok, encoded = cv2.imencode(suffix, cv2.cvtColor(self.plot(**plot_kwargs), cv2.COLOR_RGB2BGR))
            if not ok:
                raise ValueError(f"OpenCV could not encode an image as {suffix!r} for {str(path)!r}.")
            data = encoded.tobytes()
        else:
            raise ValueError(f"Cannot save a result as {str(path)!r}: use a .json file or an image suffix "
                             f"({', '.join(_IMAGE_SUFFIXES)}).")
        path.parent.mkdir(parents=True, exist_ok=True)
        _atomic_write(path, data)
        return path


def _rebuild(data: Dict[str, Any], image_size: Tuple[int, int], source: str, image: Optional[np.ndarray],
             frame_index: Optional[int]) -> DetectionResult:
    return DetectionResult(data["scores"], data["labels"], data["boxes"], data["label_ids"], image_size=image_size,
                           source=source, image=image, frame_index=frame_index)


def _ascii(text: str) -> str:
    """OpenCV's Hershey fonts only draw ASCII; other characters become '?'."""
    return text.encode("ascii", "replace").decode("ascii")


def _draw_caption(canvas: np.ndarray, text: str, corner: Tuple[int, int], color: Tuple[int, int, int],
                  font_scale: float, thickness: int) -> None:
    """A filled caption box above ``corner`` (inside the box when there is no room), text in black or white."""
    font = cv2.FONT_HERSHEY_SIMPLEX
    (text_w, text_h), baseline = cv2.getTextSize(text, font, font_scale, thickness)
    pad = max(1, thickness)
    box_h = text_h + baseline + 2 * pad
    height, width = canvas.shape[:2]
    x = min(max(corner[0], 0), max(width - text_w - 2 * pad, 0))
    top = corner[1] - box_h if corner[1] - box_h >= 0 else max(corner[1], 0)
    top = min(top, max(height - box_h, 0))
    cv2.rectangle(canvas, (x, top), (x + text_w + 2 * pad, top + box_h), color, -1)
    luminance = 0.299 * color[0] + 0.587 * color[1] + 0.114 * color[2]
    text_color = (0, 0, 0) if luminance > 140 else (255, 255, 255)
    cv2.putText(canvas, text, (x + pad, top + pad + text_h), font, font_scale, text_color, thickness, cv2.LINE_AA)


def _atomic_write(path: Path, data: bytes) -> None:
    """Write to a hidden temporary file beside ``path`` (normal permissions), then ``os.replace`` it."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
