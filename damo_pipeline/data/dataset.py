"""A detection dataset split in any supported format, cleaned: the one object training and evaluation read.

``load_detection_dataset(path, split)`` detects the format (COCO JSON, Pascal VOC XML, YOLO txt), parses it,
maps classes to contiguous labels 0..K-1, clips boxes to their image, drops degenerate and crowd boxes from
training and counts every fix in a :class:`DataReport`.
"""
from __future__ import annotations

import contextlib
import io
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from tqdm import tqdm

from .formats import ParsedSplit, RawImage, get_format
from .image_io import decode_image, read_image_size
from .report import (
    FLAG_CMYK, FLAG_DECODED, FLAG_EXIF_ROTATED, FLAG_GRAYSCALE, FLAG_OTHER_MODE, FLAG_RGBA, FLAG_SIZE_MISMATCH,
    FLAG_UNREADABLE, DataReport,
)

logger = logging.getLogger(__name__)

CLIP_TOLERANCE_PX = 0.01  # a box reaching outside by less than this is not counted as clipped (rounding noise)


@dataclass
class ImageRecord:
    """One cleaned image of a split.

    Attributes:
        image_id / file_name / path: identity of the image (``path`` is the file on disk).
        height / width: size of the upright image in pixels.
        boxes: float32 [K, 4] xyxy in original pixels, clipped to the image, each with positive width and height.
        labels: int64 [K] labels 0..num_classes-1.
        areas: float32 [K] area for the COCO size buckets (the annotation file's ``area`` when given, else w*h).
        seg_points: float32 [P, 2] polygon points (x, y) of the boxes that have one, concatenated in box order.
        seg_counts: int32 [K] points per box in ``seg_points`` (0: that box has no polygon).
        crowd_boxes / crowd_labels / crowd_areas: ``iscrowd=1`` regions, kept only for the evaluation ground truth.
    """

    image_id: int
    file_name: str
    path: str
    height: int
    width: int
    boxes: np.ndarray
    labels: np.ndarray
    areas: np.ndarray
    seg_points: np.ndarray
    seg_counts: np.ndarray
    crowd_boxes: np.ndarray
    crowd_labels: np.ndarray
    crowd_areas: np.ndarray


def clean_image(raw: RawImage) -> Tuple[ImageRecord, Dict[str, int]]:
    """Clip, drop and split a raw image's annotations.

    Returns:
        ``(record, counts)`` where counts has ``clipped_boxes``, ``degenerate_boxes`` and ``crowd_boxes``.
    """
    height, width = raw.height, raw.width
    if (height <= 0 or width <= 0) and not raw.unreadable:
        size = read_image_size(raw.path)
        height, width = size if size is not None else (0, 0)
    boxes = raw.boxes
    finite = np.isfinite(boxes).all(axis=1)
    if height > 0 and width > 0:
        limits = np.array([width, height, width, height], dtype=np.float64)
        clipped = np.clip(np.nan_to_num(boxes), 0.0, limits)
    else:  # size unknown (unreadable file): cannot clip
        clipped = np.nan_to_num(boxes)
    valid = finite & (clipped[:, 2] > clipped[:, 0]) & (clipped[:, 3] > clipped[:, 1])
    moved = np.abs(clipped - np.nan_to_num(boxes)).max(axis=1, initial=0.0) > CLIP_TOLERANCE_PX
    box_areas = (clipped[:, 2] - clipped[:, 0]) * (clipped[:, 3] - clipped[:, 1])
    areas = np.where(np.isfinite(raw.areas) & (raw.areas > 0), raw.areas, box_areas)
    crowd = raw.crowd
    train = valid & ~crowd
    counts = {"clipped_boxes": int((moved & train).sum()), "degenerate_boxes": int((~valid & ~crowd).sum()),
              "crowd_boxes": int(crowd.sum())}
    keep_index = np.flatnonzero(train)
    if raw.segments is not None:
        polygons = [raw.segments[i] for i in keep_index]
        seg_counts = np.array([0 if p is None else len(p) for p in polygons], dtype=np.int32)
        present = [p for p in polygons if p is not None]
        seg_points = np.concatenate(present).astype(np.float32) if present else np.zeros((0, 2), np.float32)
    else:
        seg_counts, seg_points = np.zeros(len(keep_index), np.int32), np.zeros((0, 2), np.float32)
    crowd_keep = valid & crowd
    record = ImageRecord(
        image_id=int(raw.image_id), file_name=raw.file_name, path=str(raw.path), height=int(height),
        width=int(width), boxes=clipped[train].astype(np.float32), labels=raw.labels[train].astype(np.int64),
        areas=areas[train].astype(np.float32), seg_points=seg_points, seg_counts=seg_counts,
        crowd_boxes=clipped[crowd_keep].astype(np.float32), crowd_labels=raw.labels[crowd_keep].astype(np.int64),
        crowd_areas=areas[crowd_keep].astype(np.float32))
    return record, counts


class DetectionDataset:
    """A cleaned detection split: images, boxes in original pixels, contiguous labels and a data report.

    Build it with :func:`load_detection_dataset`. Indexing is positional (0..len-1); ``image_info(i)["id"]`` is
    the image id used by :meth:`to_coco_gt` and by COCO-format results.

    Attributes:
        class_names: K names; label k <-> ``class_names[k]``.
        category_ids: K COCO category ids; label k is written as ``category_ids[k]`` in COCO results.
        name: a label for logs (``raccoon/train``).
        source_format: ``coco``, ``voc``, ``yolo`` or ``custom``.
    """

    def __init__(self, records: Sequence[ImageRecord], class_names: Sequence[str], category_ids: Sequence[int],
                 name: str = "", source_format: str = "custom", counts: Optional[Dict[str, int]] = None) -> None:
        if len(class_names) != len(category_ids):
            raise ValueError(f"{len(class_names)} class names but {len(category_ids)} category ids.")
        if not class_names:
            raise ValueError(f"Dataset {name or ''} has no classes; a detection dataset needs at least one.")
        self.records: List[ImageRecord] = list(records)
        self.class_names: List[str] = [str(n) for n in class_names]
        self.category_ids: List[int] = [int(i) for i in category_ids]
        self.name = name
        self.source_format = source_format
        self._counts = dict(counts or {})
        # One byte of FLAG_* bits per image, in shared memory so DataLoader workers' decodes reach the report.
        self._image_flags = torch.zeros(len(self.records), dtype=torch.uint8).share_memory_()
        self.indices_with_boxes = np.array([i for i, r in enumerate(self.records) if len(r.boxes)], dtype=np.int64)

    @classmethod
    def from_parsed(cls, parsed: ParsedSplit) -> "DetectionDataset":
        """Clean a format reader's output (see :func:`clean_image`) into a dataset."""
        records, totals = [], {"clipped_boxes": 0, "degenerate_boxes": 0, "crowd_boxes": 0}
        preset_unreadable = []
        for index, raw in enumerate(parsed.images):
            record, counts = clean_image(raw)
            records.append(record)
            for key, value in counts.items():
                totals[key] += value
            if raw.unreadable:
                preset_unreadable.append(index)
        dataset = cls(records, parsed.class_names, parsed.category_ids, name=parsed.name,
                      source_format=parsed.source_format, counts=totals)
        for index in preset_unreadable:
            dataset._image_flags[index] = FLAG_DECODED | FLAG_UNREADABLE
        return dataset

    def __len__(self) -> int:
        return len(self.records)

    def __repr__(self) -> str:
        return (f"DetectionDataset(name={self.name!r}, format={self.source_format!r}, images={len(self)}, "
                f"classes={len(self.class_names)})")

    @property
    def num_classes(self) -> int:
        """Number of classes K."""
        return len(self.class_names)

    def _check_index(self, index: int) -> int:
        if not -len(self) <= index < len(self):
            raise IndexError(f"Image index {index} out of range for {len(self)} images.")
        return index % len(self)

    def image_info(self, index: int) -> Dict[str, Any]:
        """``{"id", "file_name", "height", "width"}`` of image ``index`` (the upright size in pixels)."""
        record = self.records[self._check_index(index)]
        return {"id": record.image_id, "file_name": record.file_name, "height": record.height,
                "width": record.width}

    def image_path(self, index: int) -> Path:
        """The image file of ``index``."""
        return Path(self.records[self._check_index(index)].path)

    def annotations(self, index: int) -> Tuple[np.ndarray, np.ndarray]:
        """Training boxes of image ``index``: ``(boxes float32 [K, 4] xyxy original pixels, labels int64 [K])``.

        Boxes are clipped to the image and have positive area; crowd regions are excluded. Copies, safe to modify.
        """
        record = self.records[self._check_index(index)]
        return record.boxes.copy(), record.labels.copy()

    def segments(self, index: int) -> Tuple[np.ndarray, np.ndarray]:
        """Polygons of image ``index``: ``(points float32 [P, 2] original pixels, counts int32 [K])`` per box."""
        record = self.records[self._check_index(index)]
        return record.seg_points.copy(), record.seg_counts.copy()

    def load_image(self, index: int) -> Optional[np.ndarray]:
        """Decode image ``index``: uint8 [H, W, 3] RGB, upright, or None when unreadable (counted in the report)."""
        index = self._check_index(index)
        record = self.records[index]
        previous = int(self._image_flags[index])
        if previous & FLAG_UNREADABLE:
            return None
        image, flags = decode_image(record.path)
        if image is not None and record.height > 0 and image.shape[:2] != (record.height, record.width):
            flags |= FLAG_SIZE_MISMATCH
        if previous | flags != previous:
            self._image_flags[index] = previous | flags
        if image is None:
            logger.warning("Skipping unreadable image %s (%s, index %d).", record.path, self.name, index)
        return image

    def scan_images(self, decode: bool = True, progress: Optional[bool] = None) -> DataReport:
        """Decode every image once so that the report's image counts are complete, and return the report.

        Args:
            decode: True decodes fully (finds truncated files); False reads headers only (fast: finds missing,
                non-image and wrongly sized files and the colour modes, not truncated data).
            progress: show a tqdm bar; None shows it on a TTY only.
        """
        show = sys.stderr.isatty() if progress is None else progress
        for index in tqdm(range(len(self)), desc=f"checking {self.name or 'images'}", disable=not show):
            if decode:
                self.load_image(index)
            else:
                self._scan_header(index)
        return self.report

    def _scan_header(self, index: int) -> None:
        from PIL import Image

        from .image_io import _DECODE_ERRORS, _exif_orientation

        record = self.records[index]
        flags = FLAG_DECODED
        try:
            with Image.open(record.path) as image:
                mode = image.mode
                width, height = image.size
                if _exif_orientation(image) != 1:
                    flags |= FLAG_EXIF_ROTATED
                    if _exif_orientation(image) in (5, 6, 7, 8):
                        width, height = height, width
        except _DECODE_ERRORS:
            self._image_flags[index] = int(self._image_flags[index]) | FLAG_DECODED | FLAG_UNREADABLE
            return
        mode_flags = {"L": FLAG_GRAYSCALE, "1": FLAG_GRAYSCALE, "RGBA": FLAG_RGBA, "LA": FLAG_RGBA,
                      "PA": FLAG_RGBA, "CMYK": FLAG_CMYK, "RGB": 0}
        flags |= mode_flags.get(mode, FLAG_OTHER_MODE)
        if record.height > 0 and (height, width) != (record.height, record.width):
            flags |= FLAG_SIZE_MISMATCH
        self._image_flags[index] = int(self._image_flags[index]) | flags

    def is_unreadable(self, index: int) -> bool:
        """True once image ``index`` is known to be unreadable."""
        return bool(int(self._image_flags[self._check_index(index)]) & FLAG_UNREADABLE)

    @property
    def report(self) -> DataReport:
        """Counts of what was fixed so far (image counts grow as images are decoded; see :meth:`scan_images`)."""
        flags = self._image_flags.numpy()

        def count(flag: int) -> int:
            return int(((flags & flag) != 0).sum())

        return DataReport(
            name=self.name, images=len(self), boxes=int(sum(len(r.boxes) for r in self.records)),
            classes=len(self.class_names), clipped_boxes=self._counts.get("clipped_boxes", 0),
            degenerate_boxes=self._counts.get("degenerate_boxes", 0), crowd_boxes=self._counts.get("crowd_boxes", 0),
            images_without_boxes=int(len(self) - len(self.indices_with_boxes)), images_decoded=count(FLAG_DECODED),
            unreadable_images=count(FLAG_UNREADABLE), grayscale_images=count(FLAG_GRAYSCALE),
            rgba_images=count(FLAG_RGBA), cmyk_images=count(FLAG_CMYK), other_mode_images=count(FLAG_OTHER_MODE),
            exif_rotated_images=count(FLAG_EXIF_ROTATED), size_mismatch_images=count(FLAG_SIZE_MISMATCH))

    def label_counts(self) -> np.ndarray:
        """int64 [K]: number of training boxes per label."""
        labels = [r.labels for r in self.records]
        return np.bincount(np.concatenate(labels) if labels else np.zeros(0, np.int64), minlength=self.num_classes)

    def to_coco_dict(self) -> Dict[str, Any]:
        """This split's ground truth as a COCO detection dict (crowd regions included with ``iscrowd=1``)."""
        images, annotations = [], []
        for record in self.records:
            images.append({"id": record.image_id, "file_name": record.file_name, "height": record.height,
                           "width": record.width})
            for boxes, labels, areas, crowd in ((record.boxes, record.labels, record.areas, 0),
                                                (record.crowd_boxes, record.crowd_labels, record.crowd_areas, 1)):
                for box, label, area in zip(boxes.tolist(), labels.tolist(), areas.tolist()):
                    annotations.append({
                        "id": len(annotations) + 1, "image_id": record.image_id,
                        "category_id": self.category_ids[label],
                        "bbox": [box[0], box[1], box[2] - box[0], box[3] - box[1]], "area": area, "iscrowd": crowd})
        categories = [{"id": cid, "name": name} for cid, name in zip(self.category_ids, self.class_names)]
        return {"images": images, "annotations": annotations, "categories": categories}

    def to_coco_gt(self) -> Any:
        """A ``pycocotools.coco.COCO`` of this split's ground truth, for ``COCOeval``.

        Category ids are :attr:`category_ids`; image ids are ``image_info(i)["id"]``; boxes are the cleaned
        training boxes in original pixels plus the crowd regions (``iscrowd=1``, which COCOeval ignores).
        """
        from pycocotools.coco import COCO

        gt = COCO()
        gt.dataset = self.to_coco_dict()
        with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints "creating index..."
            gt.createIndex()
        return gt


def load_detection_dataset(path: Union[str, Path], split: str = "train", format: Optional[str] = None,
                           class_names: Optional[Sequence[str]] = None,
                           images_dir: Optional[Union[str, Path]] = None) -> DetectionDataset:
    """Load one split of a detection dataset in COCO JSON, Pascal VOC XML or YOLO txt format.

    Args:
        path: a COCO ``.json`` file, a YOLO ``data.yaml``, or a dataset root. Roots are recognised as YOLO
            (``data.yaml``), VOC (``Annotations/``) or COCO (``annotations/<split>.json`` /
            ``instances_<split>.json`` with ``images/``).
        split: ``train``, ``val`` (``valid``/``validation`` also found) or ``test``.
        format: ``coco``, ``voc`` or ``yolo`` to skip detection.
        class_names: force the class list, e.g. ``train_ds.class_names`` when loading the val split, so both
            splits share one label mapping (classes are matched by name). An annotation whose class is not in
            the list raises ValueError.
        images_dir: COCO only: the folder the ``file_name`` values are relative to, when not found automatically.

    Returns:
        The cleaned split. Log ``dataset.report.summary()`` once per run.

    Raises:
        FileNotFoundError: the path, the split's annotation file or its images are missing.
        ValueError: unknown format, malformed annotations, or classes missing from ``class_names``.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"Dataset path {path} does not exist.")
    fmt = get_format(format, path)
    parsed = fmt.load(path, split=split, class_names=class_names,
                      images_dir=Path(images_dir) if images_dir is not None else None)
    dataset = DetectionDataset.from_parsed(parsed)
    logger.info("Loaded %s (%s): %d images, %d classes.", dataset.name, fmt.name, len(dataset),
                dataset.num_classes)
    return dataset
