"""Detection heads, registered by type name."""
from . import zero_head  # noqa: F401  (registration)
from .registry import HEADS

__all__ = ["HEADS"]
