"""Reading weights safely and matching them to zoo architectures.

Official release files are ``torch.save``d dicts with a ``model`` state_dict (training form).
We read them with ``torch.load(weights_only=True)`` (no arbitrary unpickling), accept plain state
dicts and safetensors files too, strip DDP ``module.`` prefixes, and load strictly.
"""
from __future__ import annotations

import functools
import logging
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Tuple, Union

import torch
from torch import nn

from ._builder import build_model
from ._registry import list_models

logger = logging.getLogger(__name__)

StateDict = Dict[str, torch.Tensor]
_WRAPPER_KEYS = ("model", "state_dict", "ema", "model_state_dict")
CHECKPOINT_SUFFIXES = (".pth", ".pt", ".bin", ".ckpt", ".safetensors")


class CheckpointMismatchError(ValueError):
    """The checkpoint's keys or shapes do not fit the model; the message lists the differences."""


def _strip_prefix(state_dict: Mapping[str, torch.Tensor], prefix: str = "module.") -> StateDict:
    if state_dict and all(k.startswith(prefix) for k in state_dict):
        return {k[len(prefix):]: v for k, v in state_dict.items()}
    return dict(state_dict)


def unwrap_state_dict(obj: object, source: str = "checkpoint") -> StateDict:
    """The tensor dict inside a loaded checkpoint: ``obj['model']``, ``obj['state_dict']`` or ``obj`` itself."""
    if isinstance(obj, Mapping):
        for key in _WRAPPER_KEYS:
            inner = obj.get(key)
            if isinstance(inner, Mapping) and inner and all(isinstance(v, torch.Tensor) for v in inner.values()):
                return _strip_prefix(inner)
        if obj and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()):
            return _strip_prefix(obj)
        raise ValueError(f"{source} holds no state_dict: expected a dict of tensors or one under "
                         f"{list(_WRAPPER_KEYS)}; top-level keys are {sorted(map(str, obj))[:10]}.")
    raise ValueError(f"{source} holds a {type(obj).__name__}, not a state_dict.")


def load_state_dict_file(path: Union[str, Path]) -> StateDict:
    """Read a ``.pth``/``.pt``/``.bin`` (weights-only unpickling) or ``.safetensors`` file into a state_dict.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the file is not a weights file we can read safely (the message says why).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Checkpoint {str(path)!r} does not exist.")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return _strip_prefix(load_file(str(path), device="cpu"))
        except SafetensorError as e:
            raise ValueError(f"{str(path)!r} is not a valid safetensors file: {e}") from e
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise ValueError(f"Refused to load {str(path)!r}: it contains Python objects other than tensors, "
                         f"which could execute code when unpickled. Re-save only the state_dict "
                         f"(torch.save(model.state_dict(), ...)) or convert it to safetensors. ({e})") from e
    except (RuntimeError, EOFError, OSError) as e:
        raise ValueError(f"{str(path)!r} is not a readable PyTorch checkpoint (truncated or another format?): {e}") from e
    return unwrap_state_dict(obj, source=str(path))


def _shapes(state_dict: Mapping[str, torch.Tensor]) -> Dict[str, Tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in state_dict.items()}


@dataclass(frozen=True)
class KeyDiff:
    """How a state_dict differs from a model's: missing, unexpected and wrongly shaped keys."""

    missing: List[str]
    unexpected: List[str]
    wrong_shape: List[Tuple[str, Tuple[int, ...], Tuple[int, ...]]]  # key, checkpoint shape, model shape

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.wrong_shape)

    def match_fraction(self, n_expected: int) -> float:
        """Share of the model's keys present with the right shape."""
        good = n_expected - len(self.missing) - len(self.wrong_shape)
        return good / max(1, n_expected + len(self.unexpected))

    def describe(self, limit: int = 8) -> str:
        def head(items: list) -> str:
            more = f" ... and {len(items) - limit} more" if len(items) > limit else ""
            return ", ".join(map(str, items[:limit])) + more

        parts = []
        if self.missing:
            parts.append(f"missing keys ({len(self.missing)}): {head(self.missing)}")
        if self.unexpected:
            parts.append(f"unexpected keys ({len(self.unexpected)}): {head(self.unexpected)}")
        if self.wrong_shape:
            shown = [f"{k} checkpoint {list(a)} vs model {list(b)}" for k, a, b in self.wrong_shape]
            parts.append(f"wrongly shaped keys ({len(self.wrong_shape)}): {head(shown)}")
        return "; ".join(parts) if parts else "no differences"


def diff_state_dict(expected: Mapping[str, Tuple[int, ...]], state_dict: Mapping[str, torch.Tensor]) -> KeyDiff:
    """Compare a checkpoint against expected key -> shape (from a model's state_dict)."""
    got = _shapes(state_dict)
    return KeyDiff(
        missing=[k for k in expected if k not in got],
        unexpected=[k for k in got if k not in expected],
        wrong_shape=[(k, got[k], tuple(expected[k])) for k in expected if k in got and got[k] != tuple(expected[k])],
    )


@dataclass(frozen=True)
class Recognition:
    """The zoo architecture a checkpoint fits.

    Attributes:
        name: zoo id, e.g. ``damoyolo-t``.
        num_classes: class count read from the head.
        legacy: pre-v0.3.0 head with one extra class channel (81 for COCO).
        match: fraction of keys matching with their shapes (1.0 = exact).
    """

    name: str
    num_classes: int
    legacy: bool
    match: float

    @property
    def exact(self) -> bool:
        return self.match == 1.0


def _class_channels(state_dict: Mapping[str, torch.Tensor]) -> Optional[int]:
    weight = state_dict.get("head.gfl_cls.0.weight")
    return int(weight.shape[0]) if weight is not None and weight.dim() == 4 else None


@functools.lru_cache(maxsize=64)
def _zoo_shapes(name: str, num_classes: int, legacy: bool) -> Dict[str, Tuple[int, ...]]:
    with torch.device("meta"):
        model = build_model(name, num_classes=num_classes, head={"legacy": legacy})
    return _shapes(model.state_dict())


def recognize_checkpoint(state_dict: Mapping[str, torch.Tensor]) -> Recognition:
    """Find the zoo architecture (and class count) whose keys and shapes best fit ``state_dict``.

    A head with 81 class channels is read as a legacy COCO checkpoint (80 classes + 1 unused channel),
    the only case upstream produced. Check ``.exact`` before trusting the answer.

    Raises:
        ValueError: the state_dict has no DAMO-YOLO head (``head.gfl_cls.0.weight``).
    """
    if any(".rbr_reparam." in k for k in state_dict):
        raise ValueError("This is a deploy-form (RepConv-fused) checkpoint; only training-form weights "
                         "(rbr_dense/rbr_1x1 branches), as the official releases ship, can be loaded.")
    channels = _class_channels(state_dict)
    if channels is None:
        raise ValueError("The state_dict has no 'head.gfl_cls.0.weight': it is not a DAMO-YOLO detector checkpoint.")
    legacy = channels == 81
    num_classes = channels - 1 if legacy else channels
    best: Optional[Recognition] = None
    for name in list_models():
        expected = _zoo_shapes(name, num_classes, legacy)
        match = diff_state_dict(expected, state_dict).match_fraction(len(expected))
        if best is None or match > best.match:
            best = Recognition(name, num_classes, legacy, match)
    assert best is not None
    return best


def load_checkpoint(model: nn.Module, checkpoint: Union[str, Path, Mapping[str, torch.Tensor]]) -> nn.Module:
    """Load weights (a file path or a state_dict) into ``model`` strictly; returns ``model``.

    Raises:
        CheckpointMismatchError: keys or shapes differ; the message lists missing, unexpected and
            wrongly shaped keys and names the zoo architecture the checkpoint fits best.
    """
    source = str(checkpoint) if isinstance(checkpoint, (str, Path)) else "state_dict"
    state_dict = load_state_dict_file(checkpoint) if isinstance(checkpoint, (str, Path)) else _strip_prefix(checkpoint)
    expected = _shapes(model.state_dict())
    diff = diff_state_dict(expected, state_dict)
    if not diff.ok:
        hint = ""
        try:
            found = recognize_checkpoint(state_dict)
            legacy_arg = ", head={'legacy': True}" if found.legacy else ""
            hint = (f" The checkpoint fits {found.name!r} with {found.num_classes} classes"
                    f"{' (legacy head)' if found.legacy else ''} ({found.match:.0%} of keys match); "
                    f"build that with build_model({found.name!r}, num_classes={found.num_classes}{legacy_arg}).")
        except ValueError as e:
            hint = f" ({e})"
        raise CheckpointMismatchError(f"Checkpoint {source!r} does not fit the model: {diff.describe()}.{hint}")
    model.load_state_dict(state_dict, strict=True)
    logger.info("Loaded %d tensors from %s", len(state_dict), source)
    return model


def build_from_checkpoint(checkpoint: Union[str, Path, Mapping[str, torch.Tensor]],
                          class_names: Optional[List[str]] = None) -> nn.Module:
    """Recognise the architecture of a checkpoint, build it and load the weights (training form)."""
    state_dict = load_state_dict_file(checkpoint) if isinstance(checkpoint, (str, Path)) else _strip_prefix(checkpoint)
    found = recognize_checkpoint(state_dict)
    if not found.exact:
        source = str(checkpoint) if isinstance(checkpoint, (str, Path)) else "state_dict"
        expected = _zoo_shapes(found.name, found.num_classes, found.legacy)
        raise CheckpointMismatchError(
            f"Checkpoint {source!r} matches no zoo architecture exactly; closest is {found.name!r} "
            f"({found.match:.0%} of keys): {diff_state_dict(expected, state_dict).describe()}. "
            "For a custom architecture build the model from its config and use load_checkpoint().")
    kwargs = {"num_classes": found.num_classes, "head": {"legacy": found.legacy}}
    if class_names is not None:
        kwargs["class_names"] = class_names
    elif found.num_classes == 80:
        kwargs.pop("num_classes")
    model = build_model(found.name, **kwargs)
    model.load_state_dict(state_dict, strict=True)
    return model
