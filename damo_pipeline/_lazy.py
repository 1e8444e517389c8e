"""Names a package exports but imports on first use (PEP 562), so that importing it stays light.

Used by the package ``__init__`` files: ``import damo_pipeline`` must not import torch, because an ONNX Runtime
deployment never needs it.
"""
from __future__ import annotations

import importlib
import sys
from typing import Any, Callable, List, Mapping, Tuple


def lazy_exports(package: str, names: Mapping[str, str]) -> Tuple[Callable[[str], Any], Callable[[], List[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``, whose ``names`` live in its submodules.

    Args:
        package: the package's ``__name__``.
        names: exported name -> submodule path relative to the package (``"pipelines.registry"``).
    """
    def __getattr__(name: str) -> Any:
        if name in names:
            return getattr(importlib.import_module(f"{package}.{names[name]}"), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> List[str]:
        return sorted(set(vars(sys.modules[package])) | set(names))

    return __getattr__, __dir__
