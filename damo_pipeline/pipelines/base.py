"""The task-independent, engine-independent pipeline: ``preprocess`` -> forward -> ``postprocess``, in batches.

Modelled on ``transformers.Pipeline``. A subclass implements

* ``_sanitize_parameters(**kwargs)`` -> ``(preprocess_params, forward_params, postprocess_params)``; options given
  at construction are defaults that the same keywords at call time override;
* ``preprocess(input, **preprocess_params)`` -> a dict for ONE input: the arrays named in ``model_input_keys``
  with a leading batch axis of 1 (they are concatenated into batches), and any other values (metadata, passed
  through per item);
* ``_forward_batch(runtime, model_inputs, **forward_params)`` -> a dict of arrays/tensors with a leading batch
  axis (the engine-specific part: torch in :mod:`.torch_pipeline`, exported graphs in :mod:`.graph_detection`);
* ``postprocess(model_outputs, **postprocess_params)`` -> the result of ONE input (its outputs sliced to a batch
  of one, its metadata back as given by ``preprocess``).

Runtime options (``batch_size`` here; ``device`` and ``half`` for torch) are overridable per call too. This
module imports neither torch nor any runtime, so graph engines run in processes that never load torch.
"""
from __future__ import annotations

import contextlib
import itertools
import logging
from typing import Any, ContextManager, Dict, Iterable, Iterator, List, Tuple

import numpy as np

logger = logging.getLogger(__name__)

__all__ = ["BasePipeline", "check_batch_size"]

Stages = Tuple[Dict[str, Any], Dict[str, Any], Dict[str, Any]]


def check_batch_size(batch_size: Any) -> int:
    """``batch_size`` as a positive int, or ValueError naming it."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}.")
    return int(batch_size)


class BasePipeline:
    """Options, batching, lists and streams for every pipeline (see the module docstring for the contract).

    Args:
        batch_size: inputs per forward pass when a list or a stream is given.
        **kwargs: task options, checked by ``_sanitize_parameters``.
    """

    task: str = ""
    model_input_keys: Tuple[str, ...] = ("pixel_values",)

    def __init__(self, *, batch_size: int = 1, **kwargs: Any) -> None:
        self.batch_size = check_batch_size(batch_size)
        self._defaults = self._sanitize_parameters(**kwargs)

    # -- the contract -------------------------------------------------------------------------------------------
    def _sanitize_parameters(self, **kwargs: Any) -> Stages:
        raise NotImplementedError

    def preprocess(self, inputs: Any, **preprocess_params: Any) -> Dict[str, Any]:
        raise NotImplementedError

    def _forward_batch(self, runtime: Dict[str, Any], model_inputs: Dict[str, np.ndarray], **forward_params: Any
                       ) -> Dict[str, Any]:
        raise NotImplementedError

    def postprocess(self, model_outputs: Dict[str, Any], **postprocess_params: Any) -> Any:
        raise NotImplementedError

    # -- runtime options (subclasses add theirs) ----------------------------------------------------------------
    def _runtime_defaults(self) -> Dict[str, Any]:
        return {"batch_size": self.batch_size}

    def _check_runtime(self, runtime: Dict[str, Any]) -> Dict[str, Any]:
        runtime["batch_size"] = check_batch_size(runtime["batch_size"])
        return runtime

    def _inference_context(self) -> ContextManager[Any]:
        """Context the forward pass and postprocessing run in (torch: ``inference_mode``)."""
        return contextlib.nullcontext()

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
        runtime, stages = self._merge_parameters(kwargs)
        return self._generate(iter(inputs), runtime, stages)

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

        runtime, stages = self._merge_parameters(kwargs)  # check options before opening a camera
        return self._generate(iter(open_source(source)), runtime, stages)

    def _generate(self, iterator: Iterator[Any], runtime: Dict[str, Any], stages: Stages) -> Iterator[Any]:
        while True:
            chunk = list(itertools.islice(iterator, runtime["batch_size"]))
            if not chunk:
                return
            yield from self._run_batch(runtime, chunk, stages)

    def _run_batch(self, runtime: Dict[str, Any], chunk: List[Any], stages: Stages) -> List[Any]:
        pre, fwd, post = stages
        items = [self.preprocess(item, **pre) for item in chunk]
        model_inputs = {k: np.concatenate([item[k] for item in items]) for k in self.model_input_keys}
        with self._inference_context():
            outputs = self._forward_batch(runtime, model_inputs, **fwd)
            results = []
            for i, item in enumerate(items):
                per_item = {k: v for k, v in item.items() if k not in self.model_input_keys}
                per_item.update({k: v[i:i + 1] for k, v in outputs.items()})
                results.append(self.postprocess(per_item, **post))
        return results

    def _merge_parameters(self, kwargs: Dict[str, Any]) -> Tuple[Dict[str, Any], Stages]:
        runtime = self._runtime_defaults()
        for key in list(runtime):
            value = kwargs.pop(key, None)
            if value is not None:  # None means "not given", as for every option
                runtime[key] = value
        runtime = self._check_runtime(runtime)
        call = self._sanitize_parameters(**kwargs) if kwargs else ({}, {}, {})
        merged = tuple({**default, **override} for default, override in zip(self._defaults, call))
        return runtime, merged  # type: ignore[return-value]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(task={self.task!r})"
