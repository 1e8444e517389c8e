"""Run an exported graph (no NMS) with ONNX Runtime on the CPU: numpy in, numpy out, no torch import."""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from .graph_metadata import INPUT_NAME, NMS_OUTPUTS, RAW_OUTPUTS, metadata_from_map

logger = logging.getLogger(__name__)

__all__ = ["OnnxRuntimeRunner", "default_threads", "import_onnxruntime"]


def import_onnxruntime() -> Any:
    """The ``onnxruntime`` module, or an ImportError that says how to install it."""
    try:
        import onnxruntime
    except ImportError as e:
        raise ImportError("The 'onnxruntime' engine needs the onnxruntime package: pip install 'damo_pipeline[onnx]' "
                          "(or pip install onnxruntime), or use engine='torch'.") from e
    return onnxruntime


def default_threads() -> int:
    """Cores this process may run on (its CPU affinity), the thread count that fits the machine."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class OnnxRuntimeRunner:
    """An ONNX Runtime session over a graph from :func:`damo_pipeline.export.export_onnx` (``nms=False``).

    Args:
        path: the ``.onnx`` file.
        threads: intra-op threads (default: the cores this process may use); one inter-op thread, since the
            graph is a single chain.
        providers: ONNX Runtime execution providers (default CPU).
        spin: let idle worker threads spin-wait (lower latency for back-to-back calls, but busy cores between
            them; off by default because the pipeline decodes and resizes images between network calls).

    Raises:
        ImportError: onnxruntime is not installed.
        FileNotFoundError: ``path`` does not exist.
        ValueError: not a damo_pipeline graph, or one exported with ``nms=True``.
    """

    name = "onnxruntime"

    def __init__(self, path: Union[str, Path], threads: Optional[int] = None,
                 providers: Optional[Sequence[str]] = None, spin: bool = False) -> None:
        ort = import_onnxruntime()
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"ONNX graph {str(path)!r} does not exist.")
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
            raise ValueError(f"threads must be a positive int, got {threads!r}.")
        self.threads = threads or default_threads()
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
        try:
            self.session = ort.InferenceSession(str(self.path), options,
                                                providers=list(providers or ["CPUExecutionProvider"]))
        except Exception as e:  # onnxruntime raises its own exception types for corrupt files
            raise ValueError(f"ONNX Runtime could not load {str(path)!r}: {e}") from e
        self.metadata: Dict[str, Any] = metadata_from_map(self.session.get_modelmeta().custom_metadata_map,
                                                          str(path))
        outputs = [o.name for o in self.session.get_outputs()]
        if outputs[:len(NMS_OUTPUTS)] == list(NMS_OUTPUTS):
            raise ValueError(f"{str(path)!r} was exported with nms=True (outputs {outputs}); the pipeline engines run "
                             f"the raw graph and do NMS themselves: export it with nms=False.")
        if outputs != list(RAW_OUTPUTS):
            raise ValueError(f"{str(path)!r} has outputs {outputs}, expected {list(RAW_OUTPUTS)}.")
        shape = self.session.get_inputs()[0].shape  # [batch, 3, H, W]; batch is a str when dynamic
        self.fixed_batch: Optional[int] = shape[0] if isinstance(shape[0], int) else None
        self.input_size: Tuple[int, int] = (int(shape[2]), int(shape[3]))
        self.input_dtype = np.float16 if "float16" in self.session.get_inputs()[0].type else np.float32
        logger.debug("ONNX Runtime session on %s: %d threads, input %s", path, self.threads, shape)

    def __call__(self, images: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """``[N, 3, H, W]`` float RGB 0..255 -> ``(scores [N, A, C], boxes [N, A, 4])`` float32 numpy arrays."""
        if images.ndim != 4 or images.shape[1] != 3 or tuple(images.shape[2:]) != self.input_size:
            raise ValueError(f"Graph {self.path.name!r} takes [N, 3, {self.input_size[0]}, {self.input_size[1]}] "
                             f"images, got {tuple(images.shape)}.")
        images = np.ascontiguousarray(images, dtype=self.input_dtype)
        if self.fixed_batch is None or images.shape[0] == self.fixed_batch:
            return self._run(images)
        parts = [self._run(self._padded(images[i:i + self.fixed_batch]))
                 for i in range(0, images.shape[0], self.fixed_batch)]
        n = images.shape[0]
        return (np.concatenate([p[0] for p in parts])[:n], np.concatenate([p[1] for p in parts])[:n])

    def _padded(self, chunk: np.ndarray) -> np.ndarray:
        missing = self.fixed_batch - chunk.shape[0]
        return chunk if missing == 0 else np.concatenate([chunk, np.zeros((missing,) + chunk.shape[1:], chunk.dtype)])

    def _run(self, images: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        scores, boxes = self.session.run(list(RAW_OUTPUTS), {INPUT_NAME: images})
        return scores.astype(np.float32, copy=False), boxes.astype(np.float32, copy=False)

    @property
    def class_names(self) -> List[str]:
        return list(self.metadata.get("class_names", []))

    def __repr__(self) -> str:
        return f"OnnxRuntimeRunner({str(self.path)!r}, threads={self.threads}, input_size={self.input_size})"
