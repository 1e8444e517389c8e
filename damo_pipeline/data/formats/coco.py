"""COCO JSON detection files: ``root/annotations/<split>.json`` (or ``instances_<split>.json``) + ``root/images/``.

Also accepted: a JSON file given directly, ``instances_<split>2017.json`` with images in ``<split>2017/``, and the
Roboflow export (``<split>/_annotations.coco.json`` beside its images, whose unused parent category is dropped).
"""
from __future__ import annotations

import json
import logging
from collections import defaultdict
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from .base import DatasetFormat, ParsedSplit, RawImage, map_class_names, register_format, split_names

logger = logging.getLogger(__name__)


def annotation_file_candidates(root: Path, split: str) -> List[Path]:
    """Where a COCO annotation file for ``split`` may sit under ``root``, in the order they are tried."""
    candidates = []
    for name in split_names(split):
        candidates += [root / "annotations" / f"{name}.json", root / "annotations" / f"instances_{name}.json",
                       root / "annotations" / f"instances_{name}2017.json", root / f"{name}.json",
                       root / f"instances_{name}.json", root / name / "_annotations.coco.json"]
    return candidates


def _detect(path: Path) -> bool:
    if path.is_file():
        return path.suffix.lower() == ".json"
    return any(path.glob("annotations/*.json")) or any(path.glob("*/_annotations.coco.json")) \
        or any(path.glob("*.json"))


def _find_images_dir(records: List[Dict[str, Any]], json_path: Path, root: Path, split: str) -> Path:
    """The folder the records' ``file_name`` values are relative to (the first candidate holding the images)."""
    candidates: List[Path] = []
    for name in split_names(split):
        candidates += [root / "images" / name, root / name]
    candidates += [root / "images", json_path.parent, json_path.parent.parent / "images", root]
    probe = [r["file_name"] for r in records[:20] if isinstance(r.get("file_name"), str)]
    if not probe:
        return root / "images" if (root / "images").is_dir() else json_path.parent
    for folder in candidates:
        if any((folder / name).is_file() or (folder / Path(name).name).is_file() for name in probe):
            return folder
    raise FileNotFoundError(
        f"The images of {json_path} (e.g. {probe[0]!r}) were not found in any of "
        f"{[str(c) for c in dict.fromkeys(candidates)]}; pass images_dir= to load_detection_dataset.")


def _drop_roboflow_parent(categories: List[Dict[str, Any]], used_ids: set) -> List[Dict[str, Any]]:
    """Drop an unused category whose name is the supercategory of the others (Roboflow exports add one)."""
    supers = {c.get("supercategory") for c in categories}
    kept = [c for c in categories if not (c["name"] in supers and c["id"] not in used_ids and len(categories) > 1)]
    if len(kept) != len(categories):
        dropped = [c["name"] for c in categories if c not in kept]
        logger.info("Dropped unused parent categories %s (a Roboflow-style export).", dropped)
    return kept


def _polygon(segmentation: Any) -> Optional[np.ndarray]:
    """COCO polygon segmentation (list of flat [x, y, ...] lists) -> float64 [P, 2], parts concatenated; else None."""
    if not isinstance(segmentation, list) or not segmentation:
        return None
    parts = [np.asarray(part, dtype=np.float64).reshape(-1, 2) for part in segmentation
             if isinstance(part, (list, tuple)) and len(part) >= 6 and len(part) % 2 == 0]
    return np.concatenate(parts, axis=0) if parts else None


def load_coco(path: Path, split: str = "train", class_names: Optional[Sequence[str]] = None,
              images_dir: Optional[Path] = None) -> ParsedSplit:
    """Parse a COCO detection JSON.

    Args:
        path: the JSON file, or a dataset root searched with :func:`annotation_file_candidates`.
        split: split name (ignored when ``path`` is a file, except to find the image folder).
        class_names: forced class list (see :func:`map_class_names`); None takes the file's categories by id.
        images_dir: folder the ``file_name`` values are relative to; found automatically when None.

    Returns:
        The parsed split; boxes are COCO ``[x, y, w, h]`` turned into xyxy with ``x2 = x + max(w, 0)``.
    """
    path = Path(path)
    if path.is_file():
        json_path = path
        root = path.parent.parent if path.parent.name in ("annotations", *split_names(split)) else path.parent
    else:
        root = path
        found = [c for c in annotation_file_candidates(root, split) if c.is_file()]
        if not found:
            available = sorted(str(p.relative_to(root)) for p in root.glob("**/*.json"))[:20]
            raise FileNotFoundError(
                f"No COCO annotation file for split {split!r} under {root}: looked for annotations/{split}.json, "
                f"annotations/instances_{split}.json and similar; JSON files present: {available}.")
        json_path = found[0]
    try:
        with open(json_path, encoding="utf-8") as handle:
            data = json.load(handle)
    except json.JSONDecodeError as error:
        raise ValueError(f"{json_path} is not valid JSON: {error}") from error
    if not isinstance(data, dict) or not isinstance(data.get("images"), list) \
            or not isinstance(data.get("categories"), list):
        raise ValueError(f"{json_path} is not a COCO detection file: it needs 'images' and 'categories' lists.")
    annotations = data.get("annotations") or []
    categories = [c for c in data["categories"] if isinstance(c, dict)]
    for cat in categories:
        if not isinstance(cat.get("id"), int) or not isinstance(cat.get("name"), str):
            raise ValueError(f"{json_path}: category {cat!r} needs an integer 'id' and a string 'name'.")
    category_names = {c["id"]: c["name"] for c in categories}
    used_ids = {a.get("category_id") for a in annotations}
    unknown = sorted(str(i) for i in used_ids - set(category_names))
    if unknown:
        raise ValueError(f"{json_path}: annotations use category ids {unknown} that 'categories' does not declare.")
    if class_names is None:
        categories = _drop_roboflow_parent(categories, used_ids)
    names, ids, id_to_label = map_class_names([(c["id"], c["name"]) for c in categories], used_ids, class_names,
                                              str(json_path))

    records = data["images"]
    image_folder = Path(images_dir) if images_dir is not None else _find_images_dir(records, json_path, root, split)
    by_image: Dict[Any, List[Dict[str, Any]]] = defaultdict(list)
    for ann in annotations:
        by_image[ann.get("image_id")].append(ann)
    known_ids = {r.get("id") for r in records}
    orphans = len(set(by_image) - known_ids)
    if orphans:
        logger.warning("%s: annotations refer to %d image ids absent from 'images'; they are ignored.",
                       json_path, orphans)

    images: List[RawImage] = []
    seen_ids = set()
    for record in sorted(records, key=lambda r: (not isinstance(r.get("id"), int), r.get("id"))):
        image_id, file_name = record.get("id"), record.get("file_name")
        if not isinstance(image_id, int) or not isinstance(file_name, str):
            raise ValueError(f"{json_path}: image record {record!r} needs an integer 'id' and a 'file_name'.")
        if image_id in seen_ids:
            raise ValueError(f"{json_path}: image id {image_id} appears twice.")
        seen_ids.add(image_id)
        image_path = image_folder / file_name
        if not image_path.is_file() and (image_folder / Path(file_name).name).is_file():
            image_path = image_folder / Path(file_name).name
        anns = by_image.get(image_id, [])
        boxes = np.full((len(anns), 4), np.nan)
        labels = np.zeros(len(anns), np.int64)
        keep = np.ones(len(anns), bool)
        segments: List[Optional[np.ndarray]] = []
        for k, ann in enumerate(anns):
            label = id_to_label.get(ann.get("category_id"))
            if label is None:  # a declared category the forced class list lacks and no annotation uses
                keep[k] = False
            else:
                labels[k] = label
            bbox = ann.get("bbox")
            if isinstance(bbox, (list, tuple)) and len(bbox) == 4:
                try:
                    x, y, w, h = (float(v) for v in bbox)
                except (TypeError, ValueError):
                    x = y = w = h = float("nan")
                boxes[k] = (x, y, x + max(w, 0.0), y + max(h, 0.0))
            segments.append(_polygon(ann.get("segmentation")))
        areas = np.array([float(a["area"]) if isinstance(a.get("area"), (int, float)) else np.nan for a in anns])
        crowd = np.array([bool(a.get("iscrowd", 0)) for a in anns], dtype=bool)
        has_polygons = any(s is not None for s in segments)
        images.append(RawImage(
            image_id=image_id, file_name=file_name, path=image_path,
            height=int(record.get("height") or 0), width=int(record.get("width") or 0),
            boxes=boxes[keep], labels=labels[keep], crowd=crowd[keep] if len(anns) else None,
            areas=areas[keep] if len(anns) else None,
            segments=[s for s, k in zip(segments, keep) if k] if has_polygons else None))
    name = f"{root.name}/{json_path.stem}"
    return ParsedSplit(images=images, class_names=names, category_ids=ids, name=name, source_format="coco")


COCO_FORMAT = register_format(DatasetFormat(
    name="coco", detect=_detect, load=load_coco,
    description="COCO JSON: a .json file, or a root with annotations/<split>.json (or instances_<split>.json) "
                "and images/"))
