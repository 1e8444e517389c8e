"""TinyNAS backbone structures: JSON package data, or inline lists (for example NAS results)."""
from __future__ import annotations

import copy
import json
from importlib import resources
from typing import Any, Dict, List, Sequence, Union

StructureSpec = Union[str, Sequence[Dict[str, Any]]]

_STRUCTURE_PACKAGE = "damo_pipeline.models.structures"
_REQUIRED_STAGE_KEYS = ("class", "in", "out", "k", "s", "L", "btn")


def list_structures() -> list[str]:
    """Names of the structures shipped with the package (file names without ``.json``)."""
    files = resources.files(_STRUCTURE_PACKAGE).iterdir()
    return sorted(f.name[: -len(".json")] for f in files if f.name.endswith(".json"))


def load_structure(spec: StructureSpec) -> List[Dict[str, Any]]:
    """Return the structure list (stem + 5 stages) for a shipped name or an inline list.

    Raises:
        ValueError: unknown name, or a list whose entries lack the keys a stage needs.
    """
    if isinstance(spec, str):
        name = spec[: -len(".json")] if spec.endswith(".json") else spec
        name = name.rsplit("/", 1)[-1]
        if name not in list_structures():
            raise ValueError(f"Unknown TinyNAS structure {spec!r}; shipped: {list_structures()}. "
                             "Pass the structure list itself for a custom one.")
        text = resources.files(_STRUCTURE_PACKAGE).joinpath(f"{name}.json").read_text()
        structure = json.loads(text)["structure"]
    else:
        structure = copy.deepcopy(list(spec))
    if len(structure) < 2:
        raise ValueError(f"A structure needs a stem and at least one stage; got {len(structure)} entries.")
    for i, entry in enumerate(structure):
        required = ("in", "out", "k") if i == 0 else _REQUIRED_STAGE_KEYS
        missing = [k for k in required if k not in entry]
        if missing:
            raise ValueError(f"Structure entry {i} ({entry!r}) lacks keys {missing}.")
        entry.pop("nbitsA", None)
        entry.pop("nbitsW", None)
    return structure


def block_type_of(entry: Dict[str, Any]) -> str:
    """'k1kx' or 'kxkx' from a stage entry's class name (SuperResConvK1KX / SuperResConvKXKX)."""
    name = entry["class"].upper()
    if name.endswith("K1KX"):
        return "k1kx"
    if name.endswith("KXKX"):
        return "kxkx"
    raise ValueError(f"Unknown TinyNAS stage class {entry['class']!r}; expected SuperResConvK1KX or SuperResConvKXKX.")
