"""Small on-disk datasets for the data tests, written into tmp_path with numpy + cv2/PIL.

Every synthetic image is a grey (60) background with solid rectangles, one colour per class, so tests can check
that boxes stay on their objects through augmentation.
"""
import json
from pathlib import Path
from typing import Callable, Dict, List, Sequence, Tuple

import cv2
import numpy as np
import pytest

CLASS_COLOURS = {0: (255, 0, 0), 1: (0, 255, 0), 2: (0, 0, 255)}  # RGB
BACKGROUND = 60

Box = Tuple[int, int, int, int]  # xyxy, integer pixels


def draw_image(height: int, width: int, objects: Sequence[Tuple[int, Box]]) -> np.ndarray:
    """RGB uint8 image with each (label, box) drawn as a solid rectangle of the class colour."""
    image = np.full((height, width, 3), BACKGROUND, np.uint8)
    for label, (x1, y1, x2, y2) in objects:
        image[y1:y2, x1:x2] = CLASS_COLOURS[label]
    return image


def write_rgb(path: Path, image: np.ndarray) -> None:
    """Write an RGB array with cv2 (PNG: lossless; JPEG at quality 95)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    params = [cv2.IMWRITE_JPEG_QUALITY, 95] if path.suffix.lower() in (".jpg", ".jpeg") else []
    if not cv2.imwrite(str(path), image[:, :, ::-1], params):
        raise OSError(f"could not write {path}")


def random_objects(rng: np.random.Generator, height: int, width: int, count: int) -> List[Tuple[int, Box]]:
    """Non-overlapping-ish rectangles at random places (a grid of cells, one object per used cell)."""
    objects = []
    cells = [(r, c) for r in range(2) for c in range(2)]
    for r, c in [cells[i] for i in rng.permutation(4)[:count]]:
        cell_h, cell_w = height // 2, width // 2
        w, h = int(rng.integers(cell_w // 3, cell_w - 4)), int(rng.integers(cell_h // 3, cell_h - 4))
        x1 = c * cell_w + int(rng.integers(2, cell_w - w - 1))
        y1 = r * cell_h + int(rng.integers(2, cell_h - h - 1))
        objects.append((int(rng.integers(0, 3)), (x1, y1, x1 + w, y1 + h)))
    return objects


@pytest.fixture
def make_coco(tmp_path: Path) -> Callable[..., Path]:
    """Write a COCO dataset root; returns the root.

    Call with ``splits={"train": [(file_name, height, width, [(label, box), ...]), ...], ...}`` and optional
    ``categories`` (list of (id, name); label k -> categories[k]), ``extra_annotations`` (raw dicts per split).
    """

    def build(splits: Dict[str, list], categories: Sequence[Tuple[int, str]] = ((3, "cat"), (7, "dog"), (11, "eel")),
              extra_annotations: Dict[str, list] = None, root_name: str = "coco", write_images: bool = True,
              category_order: Dict[str, Sequence[int]] = None) -> Path:
        root = tmp_path / root_name
        for split, images in splits.items():
            records, annotations = [], []
            for image_id, (file_name, height, width, objects) in enumerate(images, start=1):
                if write_images:
                    write_rgb(root / "images" / file_name, draw_image(height, width, objects))
                records.append({"id": image_id * 10, "file_name": file_name, "height": height, "width": width})
                for label, (x1, y1, x2, y2) in objects:
                    annotations.append({"id": len(annotations) + 1, "image_id": image_id * 10,
                                        "category_id": categories[label][0], "bbox": [x1, y1, x2 - x1, y2 - y1],
                                        "area": float((x2 - x1) * (y2 - y1)), "iscrowd": 0})
            for extra in (extra_annotations or {}).get(split, []):
                annotations.append(dict(extra, id=len(annotations) + 1))
            cats = [{"id": cid, "name": name, "supercategory": "thing"} for cid, name in categories]
            if category_order and split in category_order:
                cats = [cats[i] for i in category_order[split]]
            (root / "annotations").mkdir(parents=True, exist_ok=True)
            (root / "annotations" / f"{split}.json").write_text(
                json.dumps({"images": records, "annotations": annotations, "categories": cats}))
        return root

    return build


@pytest.fixture
def synthetic_coco(make_coco: Callable[..., Path]) -> Path:
    """A 12-image train / 4-image val COCO set of coloured rectangles (sizes 96..160 px, non-square)."""
    rng = np.random.default_rng(0)
    splits = {}
    for split, count in (("train", 12), ("val", 4)):
        images = []
        for i in range(count):
            height, width = int(rng.integers(96, 161)), int(rng.integers(96, 161))
            objects = random_objects(rng, height, width, int(rng.integers(1, 4)))
            images.append((f"{split}_{i:03d}.png", height, width, objects))
        splits[split] = images
    return make_coco(splits)


@pytest.fixture
def make_voc(tmp_path: Path) -> Callable[..., Path]:
    """Write a VOC root: ``build({"train": [(stem, h, w, [(name, box), ...] or None), ...]})``; None: no XML."""

    def build(splits: Dict[str, list], labels_file: Sequence[str] = None) -> Path:
        root = tmp_path / "voc"
        (root / "Annotations").mkdir(parents=True, exist_ok=True)
        (root / "ImageSets" / "Main").mkdir(parents=True, exist_ok=True)
        names = sorted({name for images in splits.values() for _, _, _, objs in images for name, _ in objs or []})
        for split, images in splits.items():
            for stem, height, width, objects in images:
                label_objects = [(names.index(name) % 3, box) for name, box in objects or []]
                write_rgb(root / "JPEGImages" / f"{stem}.jpg", draw_image(height, width, label_objects))
                if objects is None:
                    continue
                parts = [f"<annotation><filename>{stem}.jpg</filename>",
                         f"<size><width>{width}</width><height>{height}</height><depth>3</depth></size>"]
                for name, (x1, y1, x2, y2) in objects:
                    parts.append(f"<object><name>{name}</name><difficult>0</difficult><bndbox><xmin>{x1}</xmin>"
                                 f"<ymin>{y1}</ymin><xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox></object>")
                parts.append("</annotation>")
                (root / "Annotations" / f"{stem}.xml").write_text("".join(parts))
            (root / "ImageSets" / "Main" / f"{split}.txt").write_text("\n".join(s for s, *_ in images) + "\n")
        if labels_file is not None:
            (root / "labels.txt").write_text("\n".join(labels_file) + "\n")
        return root

    return build


@pytest.fixture
def make_yolo(tmp_path: Path) -> Callable[..., Path]:
    """Write a YOLO root with data.yaml: ``build({"train": [(stem, h, w, lines or None), ...]}, names)``.

    ``lines`` are label-file lines (strings); None writes no label file.
    """

    def build(splits: Dict[str, list], names, yaml_text: str = None) -> Path:
        root = tmp_path / "yolo"
        for split, images in splits.items():
            for stem, height, width, lines in images:
                write_rgb(root / split / "images" / f"{stem}.png", draw_image(height, width, []))
                if lines is not None:
                    label = root / split / "labels" / f"{stem}.txt"
                    label.parent.mkdir(parents=True, exist_ok=True)
                    label.write_text("\n".join(lines) + "\n")
        if yaml_text is None:
            entries = "".join(f"{split}: {split}/images\n" for split in splits)
            names_text = json.dumps(names)
            yaml_text = f"path: .\n{entries}names: {names_text}\n"
        (root / "data.yaml").write_text(yaml_text)
        return root

    return build
