"""Validation shared by the configuration dataclasses' ``from_dict`` (model, training, augmentation)."""
from __future__ import annotations

import dataclasses
from typing import Any, Dict


def check_config_dict(cls: type, data: Any, what: str) -> Dict[str, Any]:
    """Return ``data`` if it is a dict whose keys are all fields of dataclass ``cls``.

    Raises:
        TypeError: ``data`` is not a dict.
        ValueError: unknown keys; the message lists them and the known ones.
    """
    if not isinstance(data, dict):
        raise TypeError(f"The {what} must be a dict, got {type(data).__name__}.")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"Unknown {what} keys {unknown}; known keys: {sorted(known)}.")
    return data
