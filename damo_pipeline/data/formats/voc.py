"""Pascal VOC XML: ``root/Annotations/*.xml`` + ``root/JPEGImages/`` + ``root/ImageSets/Main/<split>.txt``.

Box coordinates are taken as written (``xmin ymin xmax ymax``, no ``-1`` shift), as the converted COCO copies of
raccoon and BCCD in ``../shared/data`` were made. ``difficult`` objects are kept as ordinary boxes. The class list,
unless forced, is ``root/labels.txt`` or ``root/classes.txt`` (one name a line) when present, else the sorted set of
names over every XML in ``Annotations/`` (so every split gets the same list).
"""
from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .base import IMAGE_EXTENSIONS, DatasetFormat, ParsedSplit, RawImage, map_class_names, register_format, split_names

logger = logging.getLogger(__name__)

_VocObjects = List[Tuple[str, Tuple[float, float, float, float]]]


def _voc_root(path: Path) -> Path:
    if path.is_dir() and (path / "Annotations").is_dir():
        return path
    nested = sorted(path.glob("VOC*/Annotations")) + sorted(path.glob("VOCdevkit/VOC*/Annotations"))
    if nested:
        return nested[0].parent
    return path


def _detect(path: Path) -> bool:
    return path.is_dir() and (_voc_root(path) / "Annotations").is_dir()


def _text(node: Optional[ET.Element], tag: str) -> Optional[str]:
    child = node.find(tag) if node is not None else None
    return child.text.strip() if child is not None and child.text else None


def parse_voc_xml(xml_path: Path) -> Tuple[Optional[str], int, int, _VocObjects]:
    """Read one VOC XML: ``(filename, height, width, [(name, (xmin, ymin, xmax, ymax)), ...])``.

    Sizes are 0 when absent; unparsable coordinates become NaN (the box is then dropped as degenerate).
    """
    try:
        tree = ET.parse(xml_path)
    except ET.ParseError as error:
        raise ValueError(f"{xml_path} is not valid XML: {error}; fix or delete the file.") from error
    root = tree.getroot()
    size = root.find("size")

    def number(node: Optional[ET.Element], tag: str) -> float:
        value = _text(node, tag)
        try:
            return float(value) if value is not None else float("nan")
        except ValueError:
            return float("nan")

    height, width = number(size, "height"), number(size, "width")
    objects: _VocObjects = []
    for obj in root.iter("object"):
        name = _text(obj, "name")
        if name is None:
            raise ValueError(f"{xml_path}: an <object> has no <name>.")
        box = obj.find("bndbox")
        objects.append((name, (number(box, "xmin"), number(box, "ymin"), number(box, "xmax"), number(box, "ymax"))))
    as_int = lambda v: int(v) if np.isfinite(v) and v > 0 else 0  # noqa: E731
    return _text(root, "filename"), as_int(height), as_int(width), objects


def _class_list_file(root: Path) -> Optional[List[str]]:
    for name in ("labels.txt", "classes.txt"):
        if (root / name).is_file():
            lines = [line.strip() for line in (root / name).read_text(encoding="utf-8").splitlines()]
            return [line for line in lines if line]
    return None


def _split_ids(root: Path, split: str) -> List[str]:
    main = root / "ImageSets" / "Main"
    for name in split_names(split):
        if (main / f"{name}.txt").is_file():
            lines = (main / f"{name}.txt").read_text(encoding="utf-8").split("\n")
            return [line.split()[0] for line in lines if line.strip()]
    available = sorted(p.stem for p in main.glob("*.txt") if "_" not in p.stem) if main.is_dir() else []
    raise FileNotFoundError(
        f"No split file {main / (split + '.txt')}: VOC splits are listed in ImageSets/Main/<split>.txt "
        f"(available: {available}); write one image id (file stem) per line.")


def _image_path(root: Path, stem: str, recorded: Optional[str]) -> Path:
    folder = root / "JPEGImages"
    if recorded and (folder / recorded).is_file():
        return folder / recorded
    for ext in IMAGE_EXTENSIONS + tuple(e.upper() for e in IMAGE_EXTENSIONS):
        if (folder / f"{stem}{ext}").is_file():
            return folder / f"{stem}{ext}"
    return folder / (recorded or f"{stem}.jpg")


def load_voc(path: Path, split: str = "train", class_names: Optional[Sequence[str]] = None,
             images_dir: Optional[Path] = None) -> ParsedSplit:
    """Parse a Pascal VOC split.

    Args:
        path: the VOC root (the folder holding ``Annotations/``; a ``VOCdevkit`` parent is accepted).
        split: name of the ``ImageSets/Main/<split>.txt`` list.
        class_names: forced class list; None -> ``labels.txt``/``classes.txt`` or all names found, sorted.
        images_dir: unused (VOC images live in ``JPEGImages/``); accepted for a uniform signature.

    Returns:
        The parsed split; image ids are 1..N in split-file order; category ids 1..K.
    """
    root = _voc_root(Path(path))
    stems = _split_ids(root, split)
    parsed: Dict[str, Tuple[Optional[str], int, int, _VocObjects]] = {}
    for stem in stems:
        xml_path = root / "Annotations" / f"{stem}.xml"
        parsed[stem] = parse_voc_xml(xml_path) if xml_path.is_file() else (None, 0, 0, [])
    found_names = _class_list_file(root) if class_names is None else None
    if class_names is None and found_names is None:
        names_set = set()
        for xml_path in sorted((root / "Annotations").glob("*.xml")):
            objects = parsed[xml_path.stem][3] if xml_path.stem in parsed else parse_voc_xml(xml_path)[3]
            names_set.update(name for name, _ in objects)
        found_names = sorted(names_set)
    declared = found_names if found_names is not None else sorted({n for e in parsed.values() for n, _ in e[3]})
    used_names = {name for entry in parsed.values() for name, _ in entry[3]}
    declared_ids = {name: k + 1 for k, name in enumerate(declared)}
    for name in sorted(used_names - set(declared_ids)):
        if class_names is None:
            raise ValueError(f"{root}: objects named {name!r} are not in the class list file {declared}; "
                             f"add the name to labels.txt/classes.txt.")
        declared_ids[name] = len(declared_ids) + 1
    names, ids, id_to_label = map_class_names([(i, n) for n, i in declared_ids.items()],
                                              [declared_ids[n] for n in used_names], class_names, str(root))
    if class_names is not None:
        ids = list(range(1, len(names) + 1))  # VOC has no category ids of its own: 1..K in class-list order

    images: List[RawImage] = []
    for index, stem in enumerate(stems):
        recorded, height, width, objects = parsed[stem]
        boxes = np.array([box for _, box in objects], dtype=np.float64).reshape(-1, 4)
        labels = np.array([id_to_label[declared_ids[name]] for name, _ in objects], dtype=np.int64)
        image_path = _image_path(root, stem, recorded)
        images.append(RawImage(image_id=index + 1, file_name=image_path.name, path=image_path, height=height,
                               width=width, boxes=boxes, labels=labels))
    return ParsedSplit(images=images, class_names=names, category_ids=ids, name=f"{root.name}/{split}",
                       source_format="voc")


VOC_FORMAT = register_format(DatasetFormat(
    name="voc", detect=_detect, load=load_voc,
    description="Pascal VOC: a root with Annotations/*.xml, JPEGImages/ and ImageSets/Main/<split>.txt"))
