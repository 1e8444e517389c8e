"""YOLO txt labels with a ``data.yaml`` (Ultralytics / Roboflow layout).

``data.yaml`` holds ``names`` (a list, or a dict index -> name), optionally ``path`` (the root the other entries are
relative to; default the YAML's folder) and one entry per split (``train``, ``val``, ``test``): an image folder, a
``.txt`` file listing image paths, or a list of those. Each image's labels are in the parallel ``labels`` folder
(``.../images/x.jpg`` -> ``.../labels/x.txt``), one object a line: ``class cx cy w h`` normalised to 0..1, or
``class x1 y1 x2 y2 x3 y3 ...`` (a normalised polygon; its box is the polygon's extent and the polygon is kept for
the mosaic's affine warp). A missing label file means an image without boxes.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..image_io import read_image_size
from .base import IMAGE_EXTENSIONS, DatasetFormat, ParsedSplit, RawImage, list_image_files, map_class_names, \
    register_format, split_names

logger = logging.getLogger(__name__)

YAML_NAMES = ("data.yaml", "data.yml", "dataset.yaml", "dataset.yml")


def _yaml_file(path: Path) -> Optional[Path]:
    if path.is_file() and path.suffix.lower() in (".yaml", ".yml"):
        return path
    if path.is_dir():
        for name in YAML_NAMES:
            if (path / name).is_file():
                return path / name
        others = sorted(path.glob("*.yaml")) + sorted(path.glob("*.yml"))
        if len(others) == 1:
            return others[0]
    return None


def _detect(path: Path) -> bool:
    return _yaml_file(path) is not None


def _read_yaml(yaml_path: Path) -> Dict[str, Any]:
    import yaml

    try:
        data = yaml.safe_load(yaml_path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ValueError(f"{yaml_path} is not valid YAML: {error}") from error
    if not isinstance(data, dict) or "names" not in data:
        raise ValueError(f"{yaml_path} is not a YOLO dataset file: it needs 'names' and one entry per split.")
    return data


def _class_names(data: Dict[str, Any], yaml_path: Path) -> List[str]:
    names = data["names"]
    if isinstance(names, dict):
        try:
            indices = sorted(int(k) for k in names)
        except (TypeError, ValueError) as error:
            raise ValueError(f"{yaml_path}: 'names' keys must be class indices, got {list(names)}.") from error
        if indices != list(range(len(indices))):
            raise ValueError(f"{yaml_path}: 'names' indices must run 0..{len(indices) - 1}, got {indices}.")
        names = [names[k] if k in names else names[str(k)] for k in indices]
    if not isinstance(names, (list, tuple)) or not names:
        raise ValueError(f"{yaml_path}: 'names' must be a non-empty list or dict, got {names!r}.")
    if "nc" in data and int(data["nc"]) != len(names):
        raise ValueError(f"{yaml_path}: nc={data['nc']} but 'names' has {len(names)} entries.")
    return [str(n) for n in names]


def _resolve(root: Path, entry: str) -> Path:
    """An entry of data.yaml as a path; ``../x`` that does not exist is retried as ``x`` (Roboflow exports)."""
    candidate = (root / entry).resolve()
    if not candidate.exists() and entry.startswith("../"):
        retry = (root / entry[3:]).resolve()
        if retry.exists():
            return retry
    return candidate


def _image_files(root: Path, entries: Any, yaml_path: Path) -> List[Path]:
    entries = entries if isinstance(entries, (list, tuple)) else [entries]
    files: List[Path] = []
    for entry in entries:
        location = _resolve(root, str(entry))
        if location.is_dir():
            files += list_image_files(location)
        elif location.is_file() and location.suffix.lower() == ".txt":
            for line in location.read_text(encoding="utf-8").splitlines():
                line = line.strip()
                if line:
                    item = Path(line)
                    files.append(item if item.is_absolute() else (location.parent / item).resolve())
        else:
            raise FileNotFoundError(f"{yaml_path}: split entry {entry!r} resolves to {location}, which is neither "
                                    f"an image folder nor a .txt list of images.")
    return files


def label_path_for(image_path: Path) -> Path:
    """``.../images/a/b.jpg`` -> ``.../labels/a/b.txt`` (the last ``images`` folder is swapped), else beside it."""
    parts = list(image_path.parts)
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] == "images":
            parts[i] = "labels"
            return Path(*parts).with_suffix(".txt")
    return image_path.with_suffix(".txt")


def parse_label_file(label_path: Path) -> Tuple[np.ndarray, np.ndarray, List[Optional[np.ndarray]]]:
    """Read one YOLO label file: ``(classes int64 [K], boxes float64 [K, 4] normalised xyxy, polygons)``.

    Raises:
        ValueError: a line that is neither ``c cx cy w h`` nor ``c x1 y1 ... xn yn`` (n >= 3), naming file and line.
    """
    classes, boxes, polygons = [], [], []
    for number, line in enumerate(label_path.read_text(encoding="utf-8").splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        try:
            values = [float(v) for v in fields]
        except ValueError as error:
            raise ValueError(f"{label_path}:{number}: cannot read {line!r} as numbers.") from error
        if len(values) == 5:
            _, cx, cy, w, h = values
            boxes.append((cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2))
            polygons.append(None)
        elif len(values) >= 7 and len(values) % 2 == 1:
            points = np.asarray(values[1:], dtype=np.float64).reshape(-1, 2)
            boxes.append((*points.min(0), *points.max(0)))
            polygons.append(points)
        else:
            raise ValueError(f"{label_path}:{number}: expected 'class cx cy w h' or 'class x1 y1 x2 y2 x3 y3 ...', "
                             f"got {len(values)} numbers.")
        if values[0] != int(values[0]) or values[0] < 0:
            raise ValueError(f"{label_path}:{number}: class {fields[0]!r} is not a non-negative integer.")
        classes.append(int(values[0]))
    return (np.asarray(classes, dtype=np.int64), np.asarray(boxes, dtype=np.float64).reshape(-1, 4), polygons)


def load_yolo(path: Path, split: str = "train", class_names: Optional[Sequence[str]] = None,
              images_dir: Optional[Path] = None) -> ParsedSplit:
    """Parse a YOLO split described by a ``data.yaml``.

    Args:
        path: the YAML file, or the folder holding ``data.yaml``.
        split: the YAML key (``train``, ``val``/``valid``, ``test``).
        class_names: forced class list (mapped by name from the YAML's ``names``).
        images_dir: unused; accepted for a uniform signature.

    Returns:
        The parsed split: image ids 1..N over the sorted image paths, category ids 1..K; boxes in pixels of the
        upright image (sizes read from the image headers, EXIF rotation accounted).
    """
    yaml_path = _yaml_file(Path(path))
    if yaml_path is None:
        raise FileNotFoundError(f"No data.yaml found at {path}; a YOLO dataset needs one (names + split entries).")
    data = _read_yaml(yaml_path)
    declared = _class_names(data, yaml_path)
    root = yaml_path.parent
    if data.get("path"):
        declared_root = Path(str(data["path"]))
        declared_root = declared_root if declared_root.is_absolute() else (yaml_path.parent / declared_root)
        if declared_root.is_dir():
            root = declared_root
        else:  # e.g. Ultralytics' "../datasets/coco128", relative to its own datasets folder
            logger.info("%s: 'path' %s does not exist; resolving the splits against the YAML's folder.",
                        yaml_path, declared_root)
    root = root.resolve()
    key = next((name for name in split_names(split) if data.get(name)), None)
    if key is None:
        splits = [k for k in data if k not in ("names", "nc", "path", "download", "roboflow")]
        raise ValueError(f"{yaml_path} has no entry for split {split!r}; its entries are {splits}.")
    image_files = sorted(dict.fromkeys(_image_files(root, data[key], yaml_path)))

    parsed = []
    for image_file in image_files:
        label_file = label_path_for(image_file)
        parsed.append(parse_label_file(label_file) if label_file.is_file()
                      else (np.zeros(0, np.int64), np.zeros((0, 4)), []))
    used = {int(c) for classes, _, _ in parsed for c in classes}
    bad = sorted(c for c in used if c >= len(declared))
    if bad:
        raise ValueError(f"{yaml_path}: label files use class indices {bad} but 'names' has only {len(declared)} "
                         f"classes (0..{len(declared) - 1}).")
    names, ids, id_to_label = map_class_names(list(enumerate(declared)), used, class_names, str(yaml_path))
    ids = list(range(1, len(names) + 1))

    images: List[RawImage] = []
    for index, (image_file, (classes, boxes, polygons)) in enumerate(zip(image_files, parsed)):
        size = read_image_size(image_file)
        height, width = size if size is not None else (0, 0)
        keep = np.array([int(c) in id_to_label for c in classes], dtype=bool)
        labels = np.array([id_to_label.get(int(c), 0) for c in classes], dtype=np.int64)
        scale = np.array([width, height, width, height], dtype=np.float64)
        segments = [None if p is None else p * scale[:2] for p in polygons]
        images.append(RawImage(
            image_id=index + 1, file_name=str(image_file.relative_to(root)) if image_file.is_relative_to(root)
            else str(image_file), path=image_file, height=height, width=width,
            boxes=(boxes * scale)[keep] if size is not None else np.zeros((0, 4)), labels=labels[keep]
            if size is not None else np.zeros(0, np.int64),
            segments=[s for s, k in zip(segments, keep) if k] if size is not None and any(
                p is not None for p in polygons) else None,
            unreadable=size is None))
    return ParsedSplit(images=images, class_names=names, category_ids=ids, name=f"{root.name}/{key}",
                       source_format="yolo")


YOLO_FORMAT = register_format(DatasetFormat(
    name="yolo", detect=_detect, load=load_yolo,
    description="YOLO txt: a data.yaml (names + train/val entries) with images/ and parallel labels/ folders"))

__all__ = ["IMAGE_EXTENSIONS", "YOLO_FORMAT", "label_path_for", "load_yolo", "parse_label_file"]
