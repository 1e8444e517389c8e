"""Official DAMO-YOLO weights: zoo release files and ModelScope's official repo layout.

ModelScope's official DAMO-YOLO repos (``damo/cv_tinynas_object-detection_damoyolo``, ``-t``, ``-m`` and
the industry models) hold a ``.pth``, a ``configuration.json`` and a Python config that ModelScope itself
imports. We never execute it: the architecture and class count are recognised from the checkpoint's keys
and shapes (:func:`damo_pipeline.models.recognize_checkpoint`); class names come from JSON/text data files,
from list literals read out of the Python config with :mod:`ast` (parsed, not run), from a label-map
pickle read with an unpickler that refuses every global, or else from the COCO list (80 classes).
"""
from __future__ import annotations

import ast
import io
import json
import logging
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from ..models import COCO_CLASSES, ZOO_CARDS, Detector, PretrainedCfg, list_models
from ..models.checkpoint import CHECKPOINT_SUFFIXES, build_from_checkpoint, load_state_dict_file, recognize_checkpoint

logger = logging.getLogger(__name__)

MODELSCOPE_CONFIG_NAME = "configuration.json"
CLASS_NAME_FILES = ("classes.txt", "class_names.txt", "labels.txt", "label.txt", "coco.names", "classes.names")
RELEASE_MARKER = "/release_model/"
PathLike = Union[str, Path]


@dataclass(frozen=True)
class ZooWeights:
    """One published weight file of a zoo architecture (``damoyolo-t`` = its best, ``damoyolo-t.plain``)."""

    name: str
    tag: str
    pretrained: PretrainedCfg

    @property
    def spec(self) -> str:
        return f"{self.name}.{self.tag}"


def parse_zoo_spec(spec: str) -> Optional[ZooWeights]:
    """``damoyolo-t`` / ``damoyolo-t.distill`` / ``damoyolo-t.plain`` -> :class:`ZooWeights`, else None.

    Raises:
        ValueError: a known zoo name with an unknown tag (the message lists the tags).
    """
    key = spec.strip().lower().replace("_", "-")
    name, _, tag = key.partition(".")
    if name not in list_models() or name not in ZOO_CARDS:
        return None
    card = ZOO_CARDS[name]
    if not tag:
        return ZooWeights(name, card.default.tag, card.default)
    if tag not in card.weights:
        raise ValueError(f"{name} has no weights tagged {tag!r}; published tags: {sorted(card.weights)} "
                         f"(e.g. '{name}.{next(iter(card.weights))}').")
    return ZooWeights(name, tag, card.weights[tag])


def mirror_url(url: str, mirror: str) -> str:
    """The file of official release ``url`` on a mirror that copies the release tree."""
    tail = url.split(RELEASE_MARKER, 1)[1] if RELEASE_MARKER in url else url.rsplit("/", 1)[-1]
    return f"{mirror.rstrip('/')}/{tail}"


class _NoGlobalsUnpickler(pickle.Unpickler):
    """Unpickles only plain containers and scalars; any class or function reference is refused."""

    def find_class(self, module: str, name: str) -> Any:  # noqa: D401 (pickle API)
        raise pickle.UnpicklingError(f"refused to load {module}.{name} from a label map")


def _names_from_label_map(obj: Any) -> Optional[List[str]]:
    """ModelScope's label map ``{1: [{'name': 'person', ...}], ...}`` (1-based) or a plain list/dict of names."""
    if isinstance(obj, (list, tuple)) and obj and all(isinstance(n, str) for n in obj):
        return list(obj)
    if isinstance(obj, dict) and obj and all(isinstance(k, int) for k in obj):
        names = []
        for key in sorted(obj):
            value = obj[key]
            if isinstance(value, list) and value and isinstance(value[0], dict):
                value = value[0].get("name")
            elif isinstance(value, dict):
                value = value.get("name")
            if not isinstance(value, str):
                return None
            names.append(value)
        return names
    return None


def _names_from_pickle(path: Path) -> Optional[List[str]]:
    try:
        obj = _NoGlobalsUnpickler(io.BytesIO(path.read_bytes())).load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError) as e:
        logger.info("Ignored label map %s: %s", path, e)
        return None
    return _names_from_label_map(obj)


def _names_from_json(data: Any) -> Optional[List[str]]:
    if isinstance(data, dict):
        for section in (data, data.get("dataset") or {}, data.get("model") or {}):
            if not isinstance(section, dict):
                continue
            for key in ("class_names", "classes", "labels", "id2label"):
                value = section.get(key)
                if isinstance(value, dict) and value:
                    try:
                        value = [value[k] for k in sorted(value, key=lambda k: int(k))]
                    except ValueError:
                        continue
                if isinstance(value, list) and value and all(isinstance(n, str) for n in value):
                    return list(value)
    return None


def _names_from_python_source(path: Path) -> Optional[List[str]]:
    """A ``class_names = [...]`` / ``'class_names': [...]`` list literal, read with ``ast`` (never executed)."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8", errors="replace"), filename=str(path))
    except SyntaxError:
        return None
    for node in ast.walk(tree):
        value = None
        if isinstance(node, ast.Assign) and any(
                (isinstance(t, ast.Name) and t.id == "class_names")
                or (isinstance(t, ast.Attribute) and t.attr == "class_names") for t in node.targets):
            value = node.value
        elif isinstance(node, ast.Dict):
            for k, v in zip(node.keys, node.values):
                if isinstance(k, ast.Constant) and k.value == "class_names":
                    value = v
        elif isinstance(node, ast.keyword) and node.arg == "class_names":
            value = node.value
        if value is not None:
            try:
                names = ast.literal_eval(value)
            except ValueError:
                continue
            if isinstance(names, (list, tuple)) and names and all(isinstance(n, str) for n in names):
                return list(names)
    return None


def find_class_names(folder: Path, num_classes: int) -> Tuple[List[str], str]:
    """Class names for a checkpoint folder and where they came from (data files first, COCO for 80 classes)."""
    candidates: List[Tuple[str, Optional[List[str]]]] = []
    config_path = folder / MODELSCOPE_CONFIG_NAME
    if config_path.is_file():
        try:
            candidates.append((config_path.name, _names_from_json(json.loads(config_path.read_text("utf-8")))))
        except json.JSONDecodeError:
            pass
    for name in CLASS_NAME_FILES:
        path = folder / name
        if path.is_file():
            lines = [ln.strip() for ln in path.read_text("utf-8", errors="replace").splitlines() if ln.strip()]
            candidates.append((name, lines))
    for path in sorted(folder.glob("*.json")):
        if path.name not in (MODELSCOPE_CONFIG_NAME, "config.json"):
            try:
                candidates.append((path.name, _names_from_json(json.loads(path.read_text("utf-8")))))
            except (json.JSONDecodeError, UnicodeDecodeError):
                pass
    for path in sorted(folder.glob("*.pkl")):
        candidates.append((path.name, _names_from_pickle(path)))
    for path in sorted(folder.glob("*.py")):
        candidates.append((f"{path.name} (read with ast, not executed)", _names_from_python_source(path)))
    for source, names in candidates:
        if names and len(names) == num_classes:
            return names, source
    if num_classes == 80:
        return list(COCO_CLASSES), "the COCO class list"
    return [f"class_{i}" for i in range(num_classes)], "placeholders (no class names found)"


def find_checkpoint(folder: Path) -> Path:
    """The weights file of an official-layout folder (named in ``configuration.json`` or the only one there).

    Raises:
        FileNotFoundError: none, or several without a name in ``configuration.json``.
    """
    config_path = folder / MODELSCOPE_CONFIG_NAME
    if config_path.is_file():
        try:
            config = json.loads(config_path.read_text("utf-8"))
        except json.JSONDecodeError:
            config = {}
        model = config.get("model") if isinstance(config, dict) else None
        for key in ("weights", "name", "model_file", "checkpoint"):
            value = model.get(key) if isinstance(model, dict) else None
            if isinstance(value, str) and value.endswith(CHECKPOINT_SUFFIXES) and (folder / value).is_file():
                return folder / value
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in CHECKPOINT_SUFFIXES)
    if len(files) == 1:
        return files[0]
    if not files:
        raise FileNotFoundError(f"{str(folder)!r} holds no checkpoint file ({', '.join(CHECKPOINT_SUFFIXES)}).")
    raise FileNotFoundError(f"{str(folder)!r} holds several checkpoints ({', '.join(p.name for p in files)}) and "
                            f"{MODELSCOPE_CONFIG_NAME} does not say which to use; pass one as model=PATH.")


def load_checkpoint_folder(folder: PathLike) -> Detector:
    """Load a folder that holds an official checkpoint (e.g. a ModelScope DAMO-YOLO snapshot).

    The architecture and class count come from the checkpoint's keys; nothing in the folder is executed.

    Returns:
        The :class:`Detector` in training form, eval mode, with class names (see :func:`find_class_names`).

    Raises:
        FileNotFoundError: no (single) checkpoint; ValueError / CheckpointMismatchError: unreadable or unknown.
    """
    folder = Path(folder)
    checkpoint = find_checkpoint(folder)
    state_dict = load_state_dict_file(checkpoint)
    found = recognize_checkpoint(state_dict)
    names, source = find_class_names(folder, found.num_classes)
    logger.info("%s: recognised %s with %d classes (names from %s)", checkpoint, found.name, found.num_classes, source)
    return build_from_checkpoint(state_dict, class_names=names).eval()


def release_files(names: Sequence[str] = ()) -> Dict[str, str]:
    """Zoo spec (``damoyolo-t.distill``) -> official release URL, for every published weight file."""
    out = {}
    for name in names or list_models():
        for tag, cfg in ZOO_CARDS[name].weights.items():
            out[f"{name}.{tag}"] = cfg.url
    return out
