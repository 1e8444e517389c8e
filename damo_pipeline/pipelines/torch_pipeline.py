"""The torch engine of the pipelines: device, precision, model copies and ``torch.inference_mode``.

:class:`Pipeline` adds to :class:`.base.BasePipeline` two runtime options, overridable per call like every option:
``device`` and ``half``. Its subclasses implement ``_forward(model, model_inputs)`` on tensors already on the
model's device.
"""
from __future__ import annotations

import copy
import logging
from typing import Any, ContextManager, Dict, Optional, Tuple, Union

import numpy as np
import torch
from torch import nn

from .base import BasePipeline

logger = logging.getLogger(__name__)

__all__ = ["Pipeline", "resolve_device"]

DeviceLike = Union[str, int, torch.device, None]


def resolve_device(device: DeviceLike) -> torch.device:
    """``None`` -> ``cuda`` when available, else ``cpu``; otherwise the named device, checked to exist.

    Raises:
        ValueError: an unparsable name, or a CUDA device that this machine does not have.
    """
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise ValueError(f"device must be 'cpu', 'cuda', 'cuda:N' or a torch.device, got {device!r}.") from e
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {device!r} was requested but CUDA is not available here; use device='cpu'.")
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise ValueError(f"device {device!r} does not exist: this machine has {torch.cuda.device_count()} "
                             f"CUDA device(s).")
        if resolved.index is None:  # "cuda" and "cuda:0" must name the same cached model
            resolved = torch.device("cuda", torch.cuda.current_device())
    return resolved


def _model_dtype(device: torch.device, half: bool) -> torch.dtype:
    if not half:
        return torch.float32
    if device.type != "cuda":
        raise ValueError(f"half=True runs the network in float16, which this library supports on CUDA devices only; "
                         f"the device is {str(device)!r}. Use half=False on CPU.")
    return torch.float16


class Pipeline(BasePipeline):
    """Base class of the torch-engine task pipelines.

    Args:
        model: the network, ready for inference (the subclass prepares it: eval mode, fused).
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, a ``torch.device``; default CUDA when available.
        half: run the network in float16 (CUDA only; ``ValueError`` on CPU).
        batch_size: inputs per forward pass when a list or a stream is given.
        channels_last: NHWC weights and activations (default: on CPU, where oneDNN's NHWC convolutions run the
            fused DAMO-YOLO network 1.4-1.7x faster than NCHW here; off on CUDA). Results equal NCHW's within
            float32 rounding.
        **kwargs: task options, checked by ``_sanitize_parameters``.
    """

    engine = "torch"

    def __init__(self, model: nn.Module, *, device: DeviceLike = None, half: bool = False, batch_size: int = 1,
                 channels_last: Optional[bool] = None, **kwargs: Any) -> None:
        self.device = resolve_device(device)
        self.half = bool(half)
        self.channels_last = channels_last
        dtype = _model_dtype(self.device, self.half)
        # float16 copies are made from float32 weights, never the reverse: keep a float32 source when half.
        self._float_source = copy.deepcopy(model).float().cpu() if dtype != torch.float32 else None
        self.model = model.to(device=self.device, dtype=dtype, memory_format=self.memory_format(self.device))
        self._models: Dict[Tuple[torch.device, torch.dtype], nn.Module] = {(self.device, dtype): self.model}
        super().__init__(batch_size=batch_size, **kwargs)

    def _forward(self, model: nn.Module, model_inputs: Dict[str, torch.Tensor], **forward_params: Any
                 ) -> Dict[str, torch.Tensor]:
        raise NotImplementedError

    # -- runtime ------------------------------------------------------------------------------------------------
    def memory_format(self, device: torch.device) -> torch.memory_format:
        """The memory format of the network and its input on ``device`` (see ``channels_last``)."""
        use = self.channels_last if self.channels_last is not None else device.type == "cpu"
        return torch.channels_last if use else torch.contiguous_format

    def _runtime_defaults(self) -> Dict[str, Any]:
        return {"device": self.device, "half": self.half, "batch_size": self.batch_size}

    def _check_runtime(self, runtime: Dict[str, Any]) -> Dict[str, Any]:
        runtime = super()._check_runtime(runtime)
        runtime["device"] = resolve_device(runtime["device"])
        runtime["model"] = self._model_for(runtime["device"], runtime["half"])  # checks half on this device
        return runtime

    def _inference_context(self) -> ContextManager[Any]:
        return torch.inference_mode()

    def _forward_batch(self, runtime: Dict[str, Any], model_inputs: Dict[str, np.ndarray], **forward_params: Any
                       ) -> Dict[str, torch.Tensor]:
        model = runtime["model"]
        device = next(model.parameters()).device
        tensors = {k: torch.from_numpy(v).to(device, non_blocking=True) for k, v in model_inputs.items()}
        return self._forward(model, tensors, **forward_params)

    def _model_for(self, device: torch.device, half: bool) -> nn.Module:
        """The network on ``device`` in the requested precision; copies for per-call overrides are cached."""
        dtype = _model_dtype(device, bool(half))
        key = (device, dtype)
        if key not in self._models:
            logger.info("Copying the %s model to %s (%s) for a per-call override", self.task, device, dtype)
            source = self.model if self._float_source is None else self._float_source
            self._models[key] = copy.deepcopy(source).to(device=device, dtype=dtype,
                                                         memory_format=self.memory_format(device))
        return self._models[key]

    def to(self, device: DeviceLike) -> "Pipeline":
        """Move the pipeline (its default device) to ``device``; returns ``self``."""
        self.device = resolve_device(device)
        dtype = _model_dtype(self.device, self.half)
        self.model = self.model.to(device=self.device, dtype=dtype, memory_format=self.memory_format(self.device))
        self._models = {(self.device, dtype): self.model}
        return self

    def __repr__(self) -> str:
        return f"{type(self).__name__}(task={self.task!r}, device={str(self.device)!r}, half={self.half})"
