"""Registry of neck types (config ``neck.type``)."""
from __future__ import annotations

from torch import nn

from .._component_registry import Registry

NECKS: Registry[nn.Module] = Registry("neck")
