"""Registry of backbone types (config ``backbone.type``)."""
from __future__ import annotations

from torch import nn

from .._component_registry import Registry

BACKBONES: Registry[nn.Module] = Registry("backbone")
