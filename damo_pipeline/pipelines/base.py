"""The task-independent pipeline: ``preprocess`` -> ``_forward`` -> ``postprocess``, with batching and devices.

Modelled on ``transformers.Pipeline``: a subclass implements

* ``_sanitize_parameters(**kwargs)`` -> ``(preprocess_params, forward_params, postprocess_params)``; options given
  at construction are defaults that the same keywords at call time override;
* ``preprocess(input, **preprocess_params)`` -> a dict for ONE input: tensors with a leading batch axis of 1
  (they are concatenated into batches) and any other values (metadata, passed through per item);
* ``_forward(model, model_inputs, **forward_params)`` -> a dict of tensors with a leading batch axis; it runs
  under ``torch.inference_mode()`` with the inputs already on the model's device;
* ``postprocess(model_outputs, **postprocess_params)`` -> the result of ONE input (its tensors sliced to a batch of
  one, its metadata back as given by ``preprocess``).

The base class owns three runtime options, also overridable per call: ``device``, ``half`` and ``batch_size``.
"""
from __future__ import annotations

import copy
import itertools
import logging
from typing import Any, Dict, Iterable, Iterator, List, Tuple, Union

import torch
from torch import nn

logger = logging.getLogger(__name__)

__all__ = ["Pipeline", "resolve_device"]

DeviceLike = Union[str, int, torch.device, None]
RUNTIME_PARAMS = ("device", "half", "batch_size")


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


def _check_batch_size(batch_size: Any) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}.")
    return batch_size


def _model_dtype(device: torch.device, half: bool) -> torch.dtype:
    if not half:
        return torch.float32
    if device.type != "cuda":
        raise ValueError(f"half=True runs the network in float16, which this library supports on CUDA devices only; "
                         f"the device is {str(device)!r}. Use half=False on CPU.")
    return torch.float16


class Pipeline:
    """Base class of the task pipelines (see the module docstring for the contract).

    Args:
        model: the network, ready for inference (the subclass prepares it: eval mode, fused).
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, a ``torch.device``; default CUDA when available.
        half: run the network in float16 (CUDA only; ``ValueError`` on CPU).
        batch_size: inputs per forward pass when a list or a stream is given.
        **kwargs: task options, checked by ``_sanitize_parameters``.
    """

    task: str = ""

    def __init__(self, model: nn.Module, *, device: DeviceLike = None, half: bool = False, batch_size: int = 1,
                 **kwargs: Any) -> None:
        self.device = resolve_device(device)
        self.half = bool(half)
        self.batch_size = _check_batch_size(batch_size)
        dtype = _model_dtype(self.device, self.half)
        # float16 copies are made from float32 weights, never the reverse: keep a float32 source when half.
        self._float_source = copy.deepcopy(model).float().cpu() if dtype != torch.float32 else None
        self.model = model.to(device=self.device, dtype=dtype)
        self._models: Dict[Tuple[torch.device, torch.dtype], nn.Module] = {(self.device, dtype): self.model}
        self._defaults = self._sanitize_parameters(**kwargs)

    # -- the contract -------------------------------------------------------------------------------------------
    def _sanitize_parameters(self, **kwargs: Any) -> Tuple[Dict[str, Any], Dict[str, Any], Dict[str, Any]]:
        raise NotImplementedError

    def preprocess(self, inputs: Any, **preprocess_params: Any) -> Dict[str, Any]:
        raise NotImplementedError

    def _forward(self, model: nn.Module, model_inputs: Dict[str, torch.Tensor], **forward_params: Any
                 ) -> Dict[str, torch.Tensor]:
        raise NotImplementedError

    def postprocess(self, model_outputs: Dict[str, Any], **postprocess_params: Any) -> Any:
        raise NotImplementedError

    # -- running ------------------------------------------------------------------------------------------------
    def __call__(self, inputs: Any, **kwargs: Any) -> Any:
        """Run one input (returns one result) or a list/tuple of inputs (returns a list, run in batches)."""
        batched = isinstance(inputs, (list, tuple))
        results = list(self.iterate(inputs if batched else [inputs], **kwargs))
        return results if batched else results[0]

    def iterate(self, inputs: Iterable[Any], **kwargs: Any) -> Iterator[Any]:
        """Lazily yield one result per input of any iterable, ``batch_size`` inputs per forward pass.

        Options are checked now; inputs are read, and their errors raised, as the iterator advances.
        """
        runtime, (pre, fwd, post) = self._merge_parameters(kwargs)
        model = self._model_for(runtime["device"], runtime["half"])
        return self._generate(iter(inputs), model, runtime["batch_size"], pre, fwd, post)

    def stream(self, source: Any, **kwargs: Any) -> Iterator[Any]:
        """Yield a result per frame of a video file or stream URL, per image of a folder, or per camera frame.

        Args:
            source: a video path or ``rtsp://`` URL, an image folder (its image files sorted by name), a camera
                index (``0``), a single image, or any iterable of images.
            **kwargs: per-call options, as for ``__call__``.

        Raises:
            FileNotFoundError / OSError: the source cannot be opened (raised here, not on the first ``next``).
        """
        from .sources import open_source

        runtime, (pre, fwd, post) = self._merge_parameters(kwargs)  # check options before opening a camera
        model = self._model_for(runtime["device"], runtime["half"])
        return self._generate(iter(open_source(source)), model, runtime["batch_size"], pre, fwd, post)

    def _generate(self, iterator: Iterator[Any], model: nn.Module, batch_size: int, pre: Dict[str, Any],
                  fwd: Dict[str, Any], post: Dict[str, Any]) -> Iterator[Any]:
        while True:
            chunk = list(itertools.islice(iterator, batch_size))
            if not chunk:
                return
            yield from self._run_batch(model, chunk, pre, fwd, post)

    def _run_batch(self, model: nn.Module, chunk: List[Any], pre: Dict[str, Any], fwd: Dict[str, Any],
                   post: Dict[str, Any]) -> List[Any]:
        items = [self.preprocess(item, **pre) for item in chunk]
        tensor_keys = [k for k, v in items[0].items() if isinstance(v, torch.Tensor)]
        device = next(model.parameters()).device
        model_inputs = {k: torch.cat([item[k] for item in items]).to(device, non_blocking=True) for k in tensor_keys}
        with torch.inference_mode():
            outputs = self._forward(model, model_inputs, **fwd)
            results = []
            for i, item in enumerate(items):
                per_item = {k: v for k, v in item.items() if k not in tensor_keys}
                per_item.update({k: v[i:i + 1] for k, v in outputs.items()})
                results.append(self.postprocess(per_item, **post))
        return results

    def _merge_parameters(self, kwargs: Dict[str, Any]) -> Tuple[Dict[str, Any], Tuple[Dict, Dict, Dict]]:
        runtime = {"device": self.device, "half": self.half, "batch_size": self.batch_size}
        for key in RUNTIME_PARAMS:
            value = kwargs.pop(key, None)
            if value is not None:  # None means "not given", as for every option
                runtime[key] = value
        runtime["device"] = resolve_device(runtime["device"])
        runtime["batch_size"] = _check_batch_size(runtime["batch_size"])
        call = self._sanitize_parameters(**kwargs) if kwargs else ({}, {}, {})
        merged = tuple({**default, **override} for default, override in zip(self._defaults, call))
        return runtime, merged  # type: ignore[return-value]

    def _model_for(self, device: torch.device, half: bool) -> nn.Module:
        """The network on ``device`` in the requested precision; copies for per-call overrides are cached."""
        dtype = _model_dtype(device, bool(half))
        key = (device, dtype)
        if key not in self._models:
            logger.info("Copying the %s model to %s (%s) for a per-call override", self.task, device, dtype)
            source = self.model if self._float_source is None else self._float_source
            self._models[key] = copy.deepcopy(source).to(device=device, dtype=dtype)
        return self._models[key]

    def to(self, device: DeviceLike) -> "Pipeline":
        """Move the pipeline (its default device) to ``device``; returns ``self``."""
        self.device = resolve_device(device)
        dtype = _model_dtype(self.device, self.half)
        self.model = self.model.to(device=self.device, dtype=dtype)
        self._models = {(self.device, dtype): self.model}
        return self

    def __repr__(self) -> str:
        return f"{type(self).__name__}(task={self.task!r}, device={str(self.device)!r}, half={self.half})"
