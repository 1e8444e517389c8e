"""Dataset-format readers (COCO JSON, Pascal VOC XML, YOLO txt) behind one registry."""
from pathlib import Path
from typing import Optional, Union

from .base import DATASET_FORMATS, DatasetFormat, ParsedSplit, RawImage, map_class_names, register_format
from .coco import COCO_FORMAT, load_coco
from .voc import VOC_FORMAT, load_voc
from .yolo import YOLO_FORMAT, load_yolo

# Tried in this order when the format is not given: the most specific markers first.
DETECTION_ORDER = ("yolo", "voc", "coco")


def detect_format(path: Union[str, Path]) -> str:
    """Name of the registered format ``path`` looks like.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: no registered format recognises it.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"Dataset path {path} does not exist.")
    order = list(DETECTION_ORDER) + [name for name in DATASET_FORMATS if name not in DETECTION_ORDER]
    for name in order:
        if DATASET_FORMATS[name].detect(path):
            return name
    described = "; ".join(f"{f.name}: {f.description}" for f in DATASET_FORMATS.values())
    raise ValueError(f"Cannot tell the dataset format of {path}. Supported layouts — {described}. "
                     f"Pass format= to force one.")


def get_format(name: Optional[str], path: Union[str, Path]) -> DatasetFormat:
    """The registered format ``name``, or the detected one when ``name`` is None."""
    name = detect_format(path) if name is None else name
    if name not in DATASET_FORMATS:
        raise ValueError(f"Unknown dataset format {name!r}; choose one of {sorted(DATASET_FORMATS)}.")
    return DATASET_FORMATS[name]


__all__ = ["COCO_FORMAT", "DATASET_FORMATS", "DETECTION_ORDER", "DatasetFormat", "ParsedSplit", "RawImage",
           "VOC_FORMAT", "YOLO_FORMAT", "detect_format", "get_format", "load_coco", "load_voc", "load_yolo",
           "map_class_names", "register_format"]
