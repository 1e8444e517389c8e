"""What every dataset-format reader returns, the class-list rules shared by all formats, and the format registry."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

logger = logging.getLogger(__name__)

SPLIT_ALIASES: Dict[str, Tuple[str, ...]] = {
    "train": ("train", "train2017", "training"),
    "val": ("val", "valid", "validation", "val2017"),
    "test": ("test", "test2017", "testing"),
}
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".jfif", ".ppm", ".pgm")


def split_names(split: str) -> Tuple[str, ...]:
    """``split`` followed by its usual spellings (``val`` -> ``val, valid, validation, val2017``)."""
    for aliases in SPLIT_ALIASES.values():
        if split in aliases:
            return (split,) + tuple(a for a in aliases if a != split)
    return (split,)


@dataclass
class RawImage:
    """One image as a format reader found it, before any cleaning.

    Attributes:
        image_id: integer id, unique in the split (the COCO id for COCO files, 1..N otherwise).
        file_name: the name the annotation file records (relative to the image folder).
        path: the image file on disk.
        height / width: recorded size of the upright image in pixels (0 when unknown).
        boxes: float64 [K, 4] xyxy in original pixels, unclipped; NaN rows mark unusable entries.
        labels: int64 [K] contiguous labels 0..num_classes-1.
        crowd: bool [K], True for ``iscrowd=1`` annotations.
        areas: float64 [K] area recorded by the annotation file (NaN when absent; used for COCO size buckets).
        segments: None, or a list of K entries each None or a float64 [P, 2] polygon (x, y) in original pixels.
        unreadable: True when the reader already knows the image cannot be decoded.
    """

    image_id: int
    file_name: str
    path: Path
    height: int
    width: int
    boxes: np.ndarray
    labels: np.ndarray
    crowd: np.ndarray = None
    areas: np.ndarray = None
    segments: Optional[List[Optional[np.ndarray]]] = None
    unreadable: bool = False

    def __post_init__(self) -> None:
        self.boxes = np.asarray(self.boxes, dtype=np.float64).reshape(-1, 4)
        count = len(self.boxes)
        self.labels = np.asarray(self.labels, dtype=np.int64).reshape(count)
        self.crowd = np.zeros(count, bool) if self.crowd is None else np.asarray(self.crowd, bool).reshape(count)
        self.areas = (np.full(count, np.nan) if self.areas is None
                      else np.asarray(self.areas, dtype=np.float64).reshape(count))
        if self.segments is not None and len(self.segments) != count:
            raise ValueError(f"{self.file_name}: {len(self.segments)} segments for {count} boxes.")


@dataclass
class ParsedSplit:
    """A parsed split: its images and the class list (label i -> ``class_names[i]``, COCO id ``category_ids[i]``)."""

    images: List[RawImage]
    class_names: List[str]
    category_ids: List[int]
    name: str = ""
    source_format: str = ""
    notes: List[str] = field(default_factory=list)


def map_class_names(found: Sequence[Tuple[int, str]], used_ids: Iterable[int], class_names: Optional[Sequence[str]],
                    source: str) -> Tuple[List[str], List[int], Dict[int, int]]:
    """Build the class list and the mapping from a file's class ids to contiguous labels.

    Args:
        found: ``(id, name)`` of every class the file declares (COCO category ids, YOLO indices, VOC ordinal).
        used_ids: ids that annotations actually use.
        class_names: a forced class list (typically the train split's), or None to take ``found`` sorted by id.
        source: the annotation file, for error messages.

    Returns:
        ``(class_names, category_ids, id_to_label)``. With a forced list, ``category_ids[k]`` is the file's id of
        class k, or a fresh id above the file's largest when the file does not declare that class.

    Raises:
        ValueError: duplicate names, or an annotation whose class is not in the forced list.
    """
    names_seen: Dict[str, int] = {}
    for class_id, name in found:
        if name in names_seen:
            raise ValueError(f"{source}: class name {name!r} is declared twice (ids {names_seen[name]} and "
                             f"{class_id}); class names must be unique.")
        names_seen[name] = class_id
    used = set(int(i) for i in used_ids)
    if class_names is None:
        ordered = sorted(found, key=lambda item: item[0])
        names = [name for _, name in ordered]
        ids = [int(class_id) for class_id, _ in ordered]
        return names, ids, {class_id: label for label, class_id in enumerate(ids)}
    names = [str(n) for n in class_names]
    if len(set(names)) != len(names):
        raise ValueError(f"class_names has duplicates: {names}.")
    label_of = {name: label for label, name in enumerate(names)}
    id_to_label: Dict[int, int] = {}
    unknown_used, unknown_unused = [], []
    for class_id, name in found:
        if name in label_of:
            id_to_label[int(class_id)] = label_of[name]
        elif int(class_id) in used:
            unknown_used.append(f"{name!r} (id {class_id})")
        else:
            unknown_unused.append(name)
    if unknown_used:
        raise ValueError(
            f"{source}: annotations use classes {', '.join(unknown_used)} that are not in the class list "
            f"{names}. Every split must use the training split's classes: add them to the training annotations, "
            f"or drop these annotations.")
    if unknown_unused:
        logger.info("%s declares classes %s that no annotation uses and the class list lacks; ignored.",
                    source, unknown_unused)
    next_id = max([int(i) for i, _ in found] + [0]) + 1
    ids = []
    for name in names:
        if name in names_seen:
            ids.append(int(names_seen[name]))
        else:
            ids.append(next_id)
            next_id += 1
    return names, ids, id_to_label


@dataclass(frozen=True)
class DatasetFormat:
    """A registered dataset format.

    Attributes:
        name: registry key (``coco``, ``voc``, ``yolo``).
        detect: ``detect(path) -> bool``, True when ``path`` (file or folder) looks like this format.
        load: ``load(path, split, class_names, images_dir) -> ParsedSplit``.
        description: one line for error messages and docs.
    """

    name: str
    detect: Callable[[Path], bool]
    load: Callable[..., ParsedSplit]
    description: str


DATASET_FORMATS: Dict[str, DatasetFormat] = {}


def register_format(fmt: DatasetFormat) -> DatasetFormat:
    """Add a format to :data:`DATASET_FORMATS` (later registrations with the same name replace earlier ones)."""
    DATASET_FORMATS[fmt.name] = fmt
    return fmt


def list_image_files(folder: Path) -> List[Path]:
    """Image files under ``folder`` (recursive), sorted by path."""
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
