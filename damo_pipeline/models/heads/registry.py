"""Registry of head types (config ``head.type``)."""
from __future__ import annotations

from torch import nn

from .._component_registry import Registry

HEADS: Registry[nn.Module] = Registry("head")
