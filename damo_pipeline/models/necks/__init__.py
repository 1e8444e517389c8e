"""Necks, registered by type name."""
from . import giraffe_neck_v2  # noqa: F401  (registration)
from .registry import NECKS

__all__ = ["NECKS"]
