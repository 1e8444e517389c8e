"""Object detection with an exported graph: ONNX Runtime on the CPU, or TensorRT on an NVIDIA GPU.

Same stages, options and results as the torch engine (:mod:`.detection`), with the network run by a graph
runner (:mod:`damo_pipeline.runtime`) and NMS in numpy. Given a ``.onnx`` file this module never imports
torch; given anything else (zoo id, checkpoint, hub folder, ``Detector``) it loads the model with torch once,
exports it to the graph cache (:func:`damo_pipeline.export.cached_onnx_export`) and runs the cached graph.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Dict, Iterable, Optional, Tuple, Union

import numpy as np

from ..ops.numpy_nms import multiclass_nms_numpy
from ..ops.resize import as_size
from ..runtime import create_runner
from .base import BasePipeline
from .detection import ClassSpec, DetectionStages, ModelDefaults
from .inputs import DEFAULT_MAX_DOWNLOAD_BYTES, DEFAULT_URL_TIMEOUT
from .results import DetectionResult

logger = logging.getLogger(__name__)

__all__ = ["GRAPH_ENGINES", "GraphObjectDetectionPipeline", "is_graph_file"]

GRAPH_ENGINES = ("onnxruntime", "tensorrt")
Size = Tuple[int, int]


def is_graph_file(model: Any) -> bool:
    """True for a str/Path naming an ``.onnx`` file."""
    return isinstance(model, (str, Path)) and str(model).lower().endswith(".onnx")


class GraphObjectDetectionPipeline(DetectionStages, BasePipeline):
    """Detect objects with an exported graph; results equal the torch engine's (scores within 1e-4).

    Args:
        model: a ``.onnx`` file exported by :func:`damo_pipeline.export.export_onnx` with ``nms=False``, or
            anything the torch engine takes (zoo id + ``checkpoint``, checkpoint file, hub folder or id,
            ``Detector``), exported on first use and cached (keyed by weights hash, input size and options).
        checkpoint: weights for a zoo id or a ``Detector``.
        engine: ``"onnxruntime"`` (CPU) or ``"tensorrt"`` (NVIDIA GPU, fp16 engine built from the graph).
        threads: ONNX Runtime intra-op threads (default the cores this process may use).
        int8: ONNX Runtime only: run an int8 graph quantised on ``calibration`` (once, then cached): 2.5-3x faster
            networks on CPUs with VNNI for T to L, about -0.001 AP on a fine-tuned T (see docs/deployment.md).
        calibration: the photos for ``int8`` (a folder, glob, file or list), like the deployment's images.
        half: TensorRT only: build a float16 engine (default True); ``ValueError`` with ONNX Runtime.
        device: ``None``/``"cpu"`` for ONNX Runtime; ``None``/``"cuda"``/``"cuda:N"`` for TensorRT.
        cache_dir: root of the graph (and download) cache.
        batch_size, score_threshold, iou_threshold, max_detections, classes, img_size, resize, color_order,
        exif_transpose, clip_boxes, keep_image, timeout, max_download_bytes, revision, token, local_files_only:
            as for :class:`~damo_pipeline.pipelines.ObjectDetectionPipeline`. With a ``.onnx`` file, ``img_size``
            must be the graph's (its input size is fixed at export).

    Raises:
        ImportError: the engine's package (onnxruntime, tensorrt) is missing; the message says what to install.
        RuntimeError: TensorRT cannot run here (no package or no GPU); the message says which.
        ValueError: a graph exported with NMS or by another tool, or an option the engine does not support.
    """

    task = "image-object-detection"

    def __init__(self, model: Any, checkpoint: Optional[Union[str, Path]] = None, *, engine: str = "onnxruntime",
                 threads: Optional[int] = None, int8: bool = False, calibration: Any = None,
                 half: Optional[bool] = None, device: Any = None,
                 batch_size: int = 1, score_threshold: Optional[float] = None, iou_threshold: Optional[float] = None,
                 max_detections: Optional[int] = None, classes: Optional[Iterable[ClassSpec]] = None,
                 img_size: Optional[Union[int, Tuple[int, int]]] = None, resize: Optional[str] = None,
                 color_order: str = "bgr", exif_transpose: bool = True, clip_boxes: bool = True,
                 keep_image: bool = True, timeout: float = DEFAULT_URL_TIMEOUT,
                 max_download_bytes: int = DEFAULT_MAX_DOWNLOAD_BYTES, revision: Optional[str] = None,
                 token: Optional[str] = None, cache_dir: Optional[Union[str, Path]] = None,
                 local_files_only: Optional[bool] = None) -> None:
        if engine not in GRAPH_ENGINES:
            raise ValueError(f"engine must be one of {GRAPH_ENGINES} for {type(self).__name__}, got {engine!r}; "
                             f"engine='torch' is ObjectDetectionPipeline.")
        self.engine = engine
        self._cache_dir = cache_dir
        self.int8 = bool(int8)
        self._calibration = calibration
        if self.int8 and engine != "onnxruntime":
            raise ValueError("int8=True is an ONNX Runtime (CPU) option; TensorRT runs fp16.")
        if self.int8 and calibration is None:
            raise ValueError("int8=True needs calibration= photos like the deployment's (a folder, a glob or a list "
                             "of files, ~100 images): the int8 ranges are measured on them.")
        if self.int8 and is_graph_file(model):
            raise ValueError("int8=True quantises a model exported on demand; for a .onnx file, quantise it with "
                             "damo_pipeline.export.quantize_onnx (or `damo-export --int8`) and pass the int8 graph.")
        self._runner_options = self._engine_options(engine, threads, half, device)
        self._runners: Dict[Size, Any] = {}
        self._detector = None
        if is_graph_file(model):
            given = sorted(k for k, v in dict(checkpoint=checkpoint, revision=revision, token=token,
                                              local_files_only=local_files_only).items() if v is not None)
            if given:
                raise ValueError(f"{given} do not apply to a .onnx model: its weights are in the graph.")
            runner = create_runner(engine, model, **self._runner_options)
            self._runners[runner.input_size] = runner
            model_defaults = ModelDefaults.from_metadata(runner.metadata)
            self._fixed_size: Optional[Size] = runner.input_size
            if img_size is not None and as_size(img_size) != runner.input_size:
                raise ValueError(self._size_error(as_size(img_size)))
            img_size = runner.input_size
        else:
            from .object_detection import prepare_detector  # torch: only to export a model not yet in the cache

            self._detector = prepare_detector(model, checkpoint, revision=revision, token=token, cache_dir=cache_dir,
                                              local_files_only=local_files_only)
            model_defaults = ModelDefaults.from_config(self._detector.config)
            self._fixed_size = None
        self.model_defaults = model_defaults
        defaults = self._detection_options(
            model_defaults, score_threshold=score_threshold, iou_threshold=iou_threshold,
            max_detections=max_detections, classes=classes, img_size=img_size, resize=resize,
            color_order=color_order, exif_transpose=exif_transpose, clip_boxes=clip_boxes, keep_image=keep_image,
            timeout=timeout, max_download_bytes=max_download_bytes)
        super().__init__(batch_size=batch_size, **defaults)
        self._runner_for(self._defaults[0]["img_size"])  # export/build now, not on the first image

    @staticmethod
    def _engine_options(engine: str, threads: Optional[int], half: Optional[bool], device: Any) -> Dict[str, Any]:
        if engine == "onnxruntime":
            if half:
                raise ValueError("half=True is a TensorRT option; ONNX Runtime runs the float32 graph on the CPU "
                                 "(use engine='tensorrt' on an NVIDIA GPU, or the int8 graph for CPU speed).")
            if device not in (None, "cpu"):
                raise ValueError(f"engine='onnxruntime' runs on the CPU; got device={device!r}. Use engine='tensorrt' "
                                 f"or engine='torch' for a GPU.")
            return {"threads": threads}
        if threads is not None:
            raise ValueError("threads= is an ONNX Runtime option; TensorRT runs on the GPU.")
        index = 0
        if device not in (None, "cuda"):
            text = str(device)
            if not text.startswith("cuda:") or not text[5:].isdigit():
                raise ValueError(f"engine='tensorrt' needs device=None, 'cuda' or 'cuda:N', got {device!r}.")
            index = int(text[5:])
        return {"fp16": True if half is None else bool(half), "device": index}

    def _size_error(self, size: Size) -> str:
        return (f"img_size {size} differs from the graph's fixed input size {self._fixed_size}: export the model again "
                f"at that size (export_onnx(..., img_size=...)), or pass the model itself rather than the .onnx file "
                f"so that each size is exported on demand.")

    def _check_img_size(self, size: Size) -> Size:
        if self._fixed_size is not None and size != self._fixed_size:
            raise ValueError(self._size_error(size))
        return size

    def _runner_for(self, size: Size) -> Any:
        """The runner of the graph at ``size`` (exported into the cache on first use when a model was given)."""
        size = as_size(size)
        if size not in self._runners:
            from ..export.cache import cached_onnx_export

            if self.int8:
                from ..export.cache import cached_int8_export

                path = cached_int8_export(self._detector, size, self._calibration, cache_dir=self._cache_dir)
            else:
                # TensorRT fp16 takes a float16 graph (TensorRT 11 builds only strongly typed networks).
                half_graph = self.engine == "tensorrt" and self._runner_options.get("fp16", False)
                path = cached_onnx_export(self._detector, size, cache_dir=self._cache_dir, half=half_graph)
            self._runners[size] = create_runner(self.engine, path, **self._runner_options)
        return self._runners[size]

    @property
    def runner(self) -> Any:
        """The runner of the default input size."""
        return self._runner_for(self._defaults[0]["img_size"])

    def _forward_batch(self, runtime: Dict[str, Any], model_inputs: Dict[str, np.ndarray], **forward_params: Any
                       ) -> Dict[str, np.ndarray]:
        pixels = model_inputs["pixel_values"]  # [N, H, W, 3] uint8
        runner = self._runner_for(pixels.shape[1:3])
        images = np.ascontiguousarray(pixels.transpose(0, 3, 1, 2), dtype=np.float32)
        scores, boxes = runner(images)
        return {"scores": scores, "boxes": boxes}

    def postprocess(self, model_outputs: Dict[str, Any], score_threshold: float = 0.05, iou_threshold: float = 0.7,
                    max_detections: int = 500, classes: Optional[np.ndarray] = None, clip_boxes: bool = True,
                    keep_image: bool = True) -> DetectionResult:
        """Official multiclass NMS in numpy, then the shared result building."""
        scores, boxes = model_outputs["scores"][0], model_outputs["boxes"][0]
        if classes is not None:
            scores = scores[:, classes]
        kept_boxes, kept_scores, kept_labels = multiclass_nms_numpy(scores, boxes, score_threshold, iou_threshold,
                                                                    max_detections)
        if classes is not None:
            kept_labels = classes[kept_labels]
        return self._build_result(kept_boxes, kept_scores, kept_labels, model_outputs, clip_boxes, keep_image)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(model={self.model_defaults.name!r}, engine={self.engine!r}"
                f"{', int8' if self.int8 else ''}, classes={len(self.class_names)})")
