"""Activation functions by name, as the official configs spell them."""
from __future__ import annotations

from typing import Callable, Dict

from torch import nn

_ACTIVATIONS: Dict[str, Callable[[], nn.Module]] = {
    "relu": lambda: nn.ReLU(inplace=True),
    "relu6": lambda: nn.ReLU6(inplace=True),
    "silu": lambda: nn.SiLU(inplace=True),
    "swish": lambda: nn.SiLU(inplace=True),
    "lrelu": lambda: nn.LeakyReLU(0.1, inplace=True),
    "sigmoid": lambda: nn.Sigmoid(),
    "identity": lambda: nn.Identity(),
}


def get_activation(name: str | None) -> nn.Module:
    """Return a fresh activation module for ``name`` (``None`` means identity).

    Raises:
        ValueError: if the name is unknown; the message lists the known names.
    """
    if name is None:
        return nn.Identity()
    key = name.lower()
    if key not in _ACTIVATIONS:
        raise ValueError(f"Unknown activation {name!r}; choose one of {sorted(_ACTIVATIONS)}.")
    return _ACTIVATIONS[key]()


def list_activations() -> list[str]:
    """Names accepted by :func:`get_activation`."""
    return sorted(_ACTIVATIONS)
