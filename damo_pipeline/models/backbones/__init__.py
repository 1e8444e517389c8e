"""TinyNAS (MAE-NAS) backbones, registered by type name."""
from . import tinynas_csp, tinynas_mob, tinynas_res  # noqa: F401  (registration)
from .registry import BACKBONES
from .structures import list_structures, load_structure

__all__ = ["BACKBONES", "list_structures", "load_structure"]
