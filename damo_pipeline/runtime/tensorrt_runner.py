"""Run an exported graph (no NMS) with TensorRT on an NVIDIA GPU, from an engine built once and cached.

The engine is built from the ONNX graph of :func:`damo_pipeline.export.export_onnx` (``nms=False``) with the
TensorRT Python API (10.x and 11.x): ``OnnxParser`` -> builder config (workspace limit, optimization profile
for the batch axis, precision) -> ``build_serialized_network`` -> ``Runtime.deserialize_cuda_engine``. Buffers
are torch CUDA tensors; the engine runs with ``IExecutionContext.execute_async_v3`` on a torch CUDA stream.

Precision. TensorRT 10 builds an fp16 engine from a float32 graph with ``BuilderFlag.FP16`` (weak typing:
TensorRT chooses per layer, as ``trtexec --fp16`` does). TensorRT 11 removed that flag and builds only
strongly typed networks, whose precision is the graph's own: there an fp16 engine needs a float16 graph,
``export_onnx(model, path, half=True)`` (fp16 network, box decoding kept in float32). A float16 graph is
built strongly typed on both versions. :func:`fp16_needs_half_graph` tells which case applies.

Engines depend on the GPU and the TensorRT version, so the cache file name is keyed by the graph's sha256, the
TensorRT version, the GPU name and compute capability and the build options; the file is written atomically
under a file lock, so concurrent processes build it once.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

import numpy as np

from .graph_metadata import INPUT_NAME, NMS_OUTPUTS, RAW_OUTPUTS, metadata_from_map

logger = logging.getLogger(__name__)

__all__ = ["TensorRTRunner", "EngineKey", "fp16_needs_half_graph", "gpu_has_fast_fp16", "tensorrt_status"]

INSTALL_HINT = ("pip install tensorrt (or tensorrt-cu12 / tensorrt-cu13, matching the CUDA version of your torch "
                "build; TensorRT >= 10)")
MIN_TENSORRT_MAJOR = 10
DEFAULT_WORKSPACE_MIB = 2048
_ONNX_FLOAT, _ONNX_FLOAT16 = 1, 10  # onnx.TensorProto.FLOAT / FLOAT16
_UNSAFE = re.compile(r"[^A-Za-z0-9._\-]")
_IO_ALIGNMENT = 256  # bytes; IExecutionContext.set_tensor_address asks for 256-byte aligned buffers


def tensorrt_status(device: int = 0) -> Optional[str]:
    """Whether :class:`TensorRTRunner` can run here, without building anything.

    Args:
        device: the CUDA device index the runner would use.

    Returns:
        ``None`` when TensorRT can run, else one line that names every missing piece and how to get it.
    """
    reasons: List[str] = []
    try:
        import tensorrt

        major = _major_version(tensorrt.__version__)
        if major < MIN_TENSORRT_MAJOR:
            reasons.append(f"tensorrt {tensorrt.__version__} is too old (need >= {MIN_TENSORRT_MAJOR}): {INSTALL_HINT}")
    except ImportError as e:
        if getattr(e, "name", None) == "tensorrt":
            reasons.append(f"the tensorrt package is not installed: {INSTALL_HINT}")
        else:
            reasons.append(f"tensorrt is installed but could not be imported ({e}): reinstall it ({INSTALL_HINT})")
    except OSError as e:  # a shared library of the wheel (libnvinfer) is missing or does not load
        reasons.append(f"tensorrt is installed but its libraries could not be loaded ({e}): {INSTALL_HINT}")
    try:
        import torch
    except ImportError:
        reasons.append("torch is not installed: TensorRTRunner keeps its buffers in torch CUDA tensors "
                       "(install a CUDA build of torch)")
    else:
        if torch.version.cuda is None:
            reasons.append(f"torch {torch.__version__} is a CPU-only build (torch.version.cuda is None): "
                           f"install a CUDA build of torch")
        elif not torch.cuda.is_available():
            reasons.append("no CUDA GPU is visible (torch.cuda.is_available() is False)")
        elif device >= torch.cuda.device_count():
            reasons.append(f"CUDA device {device} does not exist ({torch.cuda.device_count()} visible)")
    return "; ".join(reasons) if reasons else None


def gpu_has_fast_fp16(capability: Tuple[int, int]) -> bool:
    """Whether a GPU of this compute capability runs fp16 at least as fast as fp32.

    TensorRT 10.5 deprecated ``Builder.platform_has_fast_fp16`` in favour of asking CUDA; this is that answer:
    compute capability 5.3, 6.0, 6.2 and >= 7.0 (Volta and later; T4 is 7.5). 6.1 (Pascal GeForce) has fp16 at
    1/64 rate.
    """
    major, minor = capability
    return (major, minor) >= (7, 0) or (major, minor) in {(5, 3), (6, 0), (6, 2)}


def fp16_needs_half_graph() -> bool:
    """True when the installed TensorRT builds only strongly typed networks (TensorRT >= 11), so an fp16 engine
    must come from a float16 graph (``export_onnx(..., half=True)``); False for TensorRT 10, which also builds
    fp16 engines from float32 graphs.

    Raises:
        ImportError: tensorrt is not installed (the message says how to install it).
    """
    trt = _import_tensorrt()
    return not hasattr(trt.BuilderFlag, "FP16")


@dataclass(frozen=True)
class EngineKey:
    """Everything a serialized engine depends on; its digest names the cache file."""

    onnx_sha256: str
    tensorrt_version: str
    gpu_name: str
    compute_capability: Tuple[int, int]
    precision: str
    strongly_typed: bool
    max_batch: int
    opt_batch: int
    workspace_mib: int

    def file_name(self, stem: str) -> str:
        """``<stem>-<precision>-b<max_batch>-<16 hex digits>.engine`` (``stem`` made file-name safe)."""
        payload = json.dumps(asdict(self), sort_keys=True).encode()
        digest = hashlib.sha256(payload).hexdigest()[:16]
        return f"{_UNSAFE.sub('_', stem)}-{self.precision}-b{self.max_batch}-{digest}.engine"


@dataclass(frozen=True)
class _GraphInfo:
    metadata: Dict[str, Any]
    input_dtype: Any  # np.float32 or np.float16
    fixed_batch: Optional[int]
    input_size: Tuple[int, int]


@dataclass(frozen=True)
class _BuildPlan:
    precision: str  # "fp16" or "fp32"
    strongly_typed: bool
    fp16_flag: bool


def _major_version(version: str) -> int:
    try:
        return int(version.split(".")[0])
    except ValueError:
        return 0


def _import_tensorrt() -> Any:
    try:
        import tensorrt
    except ImportError as e:
        raise ImportError(f"TensorRTRunner needs the tensorrt package: {INSTALL_HINT}.") from e
    return tensorrt


def _inspect_graph(path: Path) -> _GraphInfo:
    """Read the graph's metadata, input dtype and shape with onnx (no TensorRT), and check it is a raw graph."""
    try:
        import onnx
    except ImportError as e:
        raise ImportError("TensorRTRunner reads the graph's metadata with onnx: pip install 'damo_pipeline[onnx]' "
                          "(or pip install onnx).") from e
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as e:  # onnx raises protobuf DecodeError and others for files that are not ONNX
        raise ValueError(f"{str(path)!r} is not a readable ONNX graph ({e}); export one with "
                         f"damo_pipeline.export.export_onnx.") from e
    metadata = metadata_from_map({p.key: p.value for p in model.metadata_props}, str(path))
    outputs = [o.name for o in model.graph.output]
    if outputs[:len(NMS_OUTPUTS)] == list(NMS_OUTPUTS):
        raise ValueError(f"{str(path)!r} was exported with nms=True (outputs {outputs}); the runners run the raw "
                         f"graph and the pipelines do NMS themselves: export it with nms=False.")
    if outputs != list(RAW_OUTPUTS):
        raise ValueError(f"{str(path)!r} has outputs {outputs}, expected {list(RAW_OUTPUTS)}.")
    inputs = [i for i in model.graph.input if i.name == INPUT_NAME]
    if not inputs:
        raise ValueError(f"{str(path)!r} has no {INPUT_NAME!r} input; export it with damo_pipeline.export.export_onnx.")
    tensor_type = inputs[0].type.tensor_type
    if tensor_type.elem_type not in (_ONNX_FLOAT, _ONNX_FLOAT16):
        raise ValueError(f"{str(path)!r}: input {INPUT_NAME!r} has ONNX element type {tensor_type.elem_type}, "
                         f"expected float32 ({_ONNX_FLOAT}) or float16 ({_ONNX_FLOAT16}).")
    dims = [d.dim_value if d.HasField("dim_value") else None for d in tensor_type.shape.dim]
    if len(dims) != 4 or dims[1] != 3:
        raise ValueError(f"{str(path)!r}: input {INPUT_NAME!r} must be [N, 3, H, W], got {dims}.")
    if dims[2] is None or dims[3] is None:
        raise ValueError(f"{str(path)!r}: input height and width are dynamic; TensorRTRunner builds for one input "
                         f"size: export with a fixed img_size.")
    return _GraphInfo(metadata=metadata,
                      input_dtype=np.float16 if tensor_type.elem_type == _ONNX_FLOAT16 else np.float32,
                      fixed_batch=dims[0], input_size=(dims[2], dims[3]))


def _plan_build(graph_is_half: bool, fp16: bool, has_fp16_flag: bool, fast_fp16: bool,
                tensorrt_version: str, path: Path) -> _BuildPlan:
    """Precision and typing of the engine (see the module docstring).

    Raises:
        ValueError: a float16 graph with ``fp16=False``.
        RuntimeError: ``fp16=True`` for a float32 graph on a TensorRT without ``BuilderFlag.FP16`` (>= 11).
    """
    if graph_is_half:
        if not fp16:
            raise ValueError(f"{str(path)!r} is a float16 graph (exported with half=True), but fp16=False asks for an "
                             f"fp32 engine: export a float32 graph (half=False), or pass fp16=True.")
        if not fast_fp16:
            logger.warning("This GPU has no fast fp16; the float16 graph %s runs in fp16 anyway (slowly).", path)
        return _BuildPlan("fp16", strongly_typed=True, fp16_flag=False)
    if not fp16:
        return _BuildPlan("fp32", strongly_typed=not has_fp16_flag, fp16_flag=False)
    if not has_fp16_flag:
        raise RuntimeError(f"TensorRT {tensorrt_version} builds only strongly typed networks (BuilderFlag.FP16 was "
                           f"removed in TensorRT 11), so an fp16 engine needs a float16 graph, and {str(path)!r} is "
                           f"float32: export it with export_onnx(model, path, half=True), or pass fp16=False for an "
                           f"fp32 engine, or install TensorRT 10 (pip install 'tensorrt-cu12>=10,<11').")
    if not fast_fp16:
        logger.warning("This GPU has no fast fp16 (see gpu_has_fast_fp16); building an fp32 engine for %s.", path)
        return _BuildPlan("fp32", strongly_typed=False, fp16_flag=False)
    return _BuildPlan("fp16", strongly_typed=False, fp16_flag=True)


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _python_logger(trt: Any) -> Any:
    """A ``trt.ILogger`` that forwards TensorRT's messages to this module's logger (INFO and VERBOSE as DEBUG)."""
    levels = {trt.ILogger.Severity.INTERNAL_ERROR: logging.ERROR, trt.ILogger.Severity.ERROR: logging.ERROR,
              trt.ILogger.Severity.WARNING: logging.WARNING, trt.ILogger.Severity.INFO: logging.DEBUG,
              trt.ILogger.Severity.VERBOSE: logging.DEBUG}

    class _Logger(trt.ILogger):
        def __init__(self) -> None:
            trt.ILogger.__init__(self)

        def log(self, severity: Any, msg: str) -> None:
            level = levels.get(severity, logging.DEBUG)
            if logger.isEnabledFor(level):
                logger.log(level, "TensorRT: %s", msg)

    return _Logger()


class TensorRTRunner:
    """A TensorRT engine over a graph from :func:`damo_pipeline.export.export_onnx` (``nms=False``).

    Follows the runner protocol of :mod:`damo_pipeline.runtime`: ``name``, ``input_size``, ``metadata`` and
    ``runner(images) -> (scores, boxes)``. Not thread-safe (one execution context); use one runner per thread.

    Args:
        onnx_path: the ``.onnx`` file, float32 or float16 (``half=True``), fixed height and width.
        fp16: build an fp16 engine (see the module docstring for how, per TensorRT version); False: fp32 (on
            Ampere and later TensorRT may use TF32 for fp32 convolutions, its default).
        max_batch: the largest batch of one engine run for a dynamic-batch graph (its optimization profile is
            batch 1..max_batch); larger inputs run in chunks. A fixed-batch graph runs that batch only
            (smaller inputs are padded) and ignores it.
        device: CUDA device index.
        cache_dir: where engines are kept (default ``<cache_root()>/tensorrt``, see
            :func:`damo_pipeline.hub.cache.cache_root`).
        opt_batch: the batch TensorRT tunes its kernels for (default 1: real-time latency).
        workspace_mib: the builder's workspace memory limit (``MemoryPoolType.WORKSPACE``).

    Raises:
        FileNotFoundError: ``onnx_path`` does not exist.
        ValueError: bad arguments, or a graph that is not a raw damo_pipeline graph with fixed height and width.
        ImportError: onnx is not installed (needed to read the graph's metadata).
        RuntimeError: TensorRT cannot run here (:func:`tensorrt_status` names why), the precision cannot be
            built with this TensorRT, or TensorRT failed to parse or build the graph.
    """

    name = "tensorrt"

    def __init__(self, onnx_path: Union[str, Path], fp16: bool = True, max_batch: int = 8, device: int = 0,
                 cache_dir: Optional[Union[str, Path]] = None, opt_batch: int = 1,
                 workspace_mib: int = DEFAULT_WORKSPACE_MIB) -> None:
        for arg_name, value, low in (("max_batch", max_batch, 1), ("device", device, 0), ("opt_batch", opt_batch, 1),
                                     ("workspace_mib", workspace_mib, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{arg_name} must be an int >= {low}, got {value!r}.")
        if not isinstance(fp16, bool):
            raise ValueError(f"fp16 must be True or False, got {fp16!r}.")
        if opt_batch > max_batch:
            raise ValueError(f"opt_batch ({opt_batch}) must not exceed max_batch ({max_batch}).")
        self.path = Path(onnx_path)
        if not self.path.is_file():
            raise FileNotFoundError(f"ONNX graph {str(onnx_path)!r} does not exist.")
        graph = _inspect_graph(self.path)
        self.metadata: Dict[str, Any] = graph.metadata
        self.input_size: Tuple[int, int] = graph.input_size
        self.input_dtype = graph.input_dtype
        self.fixed_batch: Optional[int] = graph.fixed_batch
        self.max_batch = graph.fixed_batch or max_batch
        self.opt_batch = graph.fixed_batch or opt_batch
        reason = tensorrt_status(device)
        if reason is not None:
            raise RuntimeError(f"TensorRT cannot run here: {reason}.")

        import tensorrt as trt
        import torch

        self._trt, self._torch = trt, torch
        self.device = torch.device("cuda", device)
        capability = torch.cuda.get_device_capability(self.device)
        self.plan = _plan_build(graph.input_dtype == np.float16, fp16, hasattr(trt.BuilderFlag, "FP16"),
                                gpu_has_fast_fp16(capability), trt.__version__, self.path)
        self.precision = self.plan.precision
        self.key = EngineKey(onnx_sha256=_file_sha256(self.path), tensorrt_version=trt.__version__,
                             gpu_name=torch.cuda.get_device_name(self.device), compute_capability=tuple(capability),
                             precision=self.plan.precision, strongly_typed=self.plan.strongly_typed,
                             max_batch=self.max_batch, opt_batch=self.opt_batch, workspace_mib=workspace_mib)
        from ..hub.cache import cache_root

        cache = Path(cache_dir) if cache_dir is not None else cache_root() / "tensorrt"
        stem = str(self.metadata.get("architecture") or self.path.stem)
        self.engine_path = cache / self.key.file_name(f"{stem}-{self.input_size[0]}x{self.input_size[1]}")
        self._trt_logger = _python_logger(trt)
        self.loaded_from_cache = False
        self.build_seconds: Optional[float] = None
        with torch.cuda.device(self.device):
            torch.cuda.init()
            self._runtime = trt.Runtime(self._trt_logger)
            self._engine = self._load_or_build(cache)
            self._context = self._engine.create_execution_context()
            if self._context is None:
                raise RuntimeError(f"TensorRT could not create an execution context for {self.engine_path} "
                                   f"(out of GPU memory?).")
            self._stream = torch.cuda.Stream(self.device)
        self._io_dtypes = self._engine_io_dtypes()

    # ----------------------------------------------------------------------------------------------- build
    def _load_or_build(self, cache: Path) -> Any:
        from filelock import FileLock

        cache.mkdir(parents=True, exist_ok=True)
        with FileLock(str(self.engine_path) + ".lock"):
            if self.engine_path.is_file():
                engine = self._runtime.deserialize_cuda_engine(self.engine_path.read_bytes())
                if engine is not None:
                    self.loaded_from_cache = True
                    logger.info("Loaded TensorRT %s engine %s", self.precision, self.engine_path)
                    return engine
                logger.warning("Cached TensorRT engine %s could not be loaded; building it again.", self.engine_path)
            serialized = self._build()
            fd, tmp = tempfile.mkstemp(suffix=".engine.part", dir=cache)
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(serialized)
                os.replace(tmp, self.engine_path)
            finally:
                if os.path.exists(tmp):
                    os.remove(tmp)
        engine = self._runtime.deserialize_cuda_engine(serialized)
        if engine is None:
            raise RuntimeError(f"TensorRT built {self.engine_path} but could not deserialize it (see the log).")
        return engine

    def _build(self) -> Any:
        trt = self._trt
        builder = trt.Builder(self._trt_logger)
        flags, fp16_flag = 0, self.plan.fp16_flag
        if self.plan.strongly_typed and hasattr(trt.BuilderFlag, "FP16"):  # TensorRT 10; 11 is always strongly typed
            strongly_typed_flag = getattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
            if strongly_typed_flag is not None:
                flags |= 1 << int(strongly_typed_flag)
            else:  # a TensorRT without strong typing: let it choose fp16 kernels for the float16 graph
                fp16_flag = self.plan.precision == "fp16"
        network = builder.create_network(flags)
        parser = trt.OnnxParser(network, self._trt_logger)
        if not parser.parse_from_file(str(self.path)):
            errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise RuntimeError(f"TensorRT could not parse {str(self.path)!r}: {errors or 'no parser message'}")
        config = builder.create_builder_config()
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, self.key.workspace_mib << 20)
        if fp16_flag:
            config.set_flag(trt.BuilderFlag.FP16)
        graph_input = network.get_input(0)
        shape = tuple(graph_input.shape)
        if shape[0] == -1:
            rest = shape[1:]
            profile = builder.create_optimization_profile()
            profile.set_shape(graph_input.name, (1, *rest), (self.opt_batch, *rest), (self.max_batch, *rest))
            config.add_optimization_profile(profile)
        batches = f"batch 1..{self.max_batch}" if shape[0] == -1 else f"batch {shape[0]}"
        logger.info("Building a TensorRT %s engine for %s (%s, %dx%d, TensorRT %s, %s); a first build takes "
                    "minutes, later runners load it from %s", self.precision, self.path.name, batches,
                    *self.input_size, trt.__version__, self.key.gpu_name, self.engine_path)
        start = time.perf_counter()
        serialized = builder.build_serialized_network(network, config)
        self.build_seconds = time.perf_counter() - start
        if serialized is None:
            raise RuntimeError(f"TensorRT failed to build an engine for {str(self.path)!r} (see the TensorRT errors "
                               f"logged by {__name__}).")
        logger.info("Built the TensorRT engine in %.1f s (%.1f MB)", self.build_seconds, serialized.nbytes / 1e6)
        return serialized

    def _engine_io_dtypes(self) -> Dict[str, Any]:
        trt, torch = self._trt, self._torch
        to_torch = {trt.float32: torch.float32, trt.float16: torch.float16}
        names = [self._engine.get_tensor_name(i) for i in range(self._engine.num_io_tensors)]
        expected = [INPUT_NAME, *RAW_OUTPUTS]
        if sorted(names) != sorted(expected):
            raise RuntimeError(f"Engine {self.engine_path} has I/O tensors {names}, expected {expected}.")
        dtypes = {}
        for name in names:
            dtype = self._engine.get_tensor_dtype(name)
            if dtype not in to_torch:
                raise RuntimeError(f"Engine tensor {name!r} has TensorRT type {dtype}; expected float32 or float16.")
            dtypes[name] = to_torch[dtype]
        return dtypes

    # ------------------------------------------------------------------------------------------------- run
    def __call__(self, images: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """``[N, 3, H, W]`` float RGB 0..255 numpy -> ``(scores [N, A, C], boxes [N, A, 4])`` float32 numpy arrays,
        boxes xyxy in input pixels."""
        if not isinstance(images, np.ndarray):
            raise TypeError(f"images must be a numpy array [N, 3, H, W], got {type(images).__name__}; "
                            f"use run_torch for CUDA tensors.")
        self._check_shape(tuple(images.shape))
        torch = self._torch
        batch = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32)).to(self.device)
        scores, boxes = self.run_torch(batch)
        return scores.float().cpu().numpy(), boxes.float().cpu().numpy()

    def run_torch(self, images: Any) -> Tuple[Any, Any]:
        """Run on a CUDA tensor and keep the outputs on the GPU (no host copies, for benchmarks and GPU pipelines).

        Args:
            images: ``torch.Tensor [N, 3, H, W]`` RGB 0..255 on this runner's device, float32 or float16 (cast to
                the engine's input type, :attr:`input_dtype`, if needed).

        Returns:
            ``(scores [N, A, C], boxes [N, A, 4])`` CUDA tensors in the engine's output types (float16 scores for
            a float16 graph), ordered after the engine run on the caller's current stream.
        """
        torch = self._torch
        if not isinstance(images, torch.Tensor):
            raise TypeError(f"images must be a torch.Tensor [N, 3, H, W], got {type(images).__name__}.")
        if images.device != self.device:
            raise ValueError(f"images are on {images.device}; this runner runs on {self.device}: move them with "
                             f".to({str(self.device)!r}).")
        self._check_shape(tuple(images.shape))
        images = images.to(self._io_dtypes[INPUT_NAME]).contiguous()
        n = images.shape[0]
        step = self.fixed_batch or self.max_batch
        if n == step or (self.fixed_batch is None and n < step):
            return self._run(images)
        parts = [self._run(self._padded(images[i:i + step])) for i in range(0, n, step)]
        return torch.cat([p[0] for p in parts])[:n], torch.cat([p[1] for p in parts])[:n]

    def _padded(self, chunk: Any) -> Any:
        missing = (self.fixed_batch or chunk.shape[0]) - chunk.shape[0]
        if missing == 0:
            return chunk
        return self._torch.cat([chunk, chunk.new_zeros((missing, *chunk.shape[1:]))])

    def _run(self, images: Any) -> Tuple[Any, Any]:
        torch = self._torch
        context = self._context
        if images.data_ptr() % _IO_ALIGNMENT:  # a view at an odd offset; TensorRT wants aligned I/O addresses
            images = images.clone()
        with torch.cuda.device(self.device):
            caller = torch.cuda.current_stream(self.device)
            self._stream.wait_stream(caller)  # the input is written on the caller's stream
            if not context.set_input_shape(INPUT_NAME, tuple(images.shape)):
                raise RuntimeError(f"TensorRT rejected input shape {tuple(images.shape)} (engine {self.engine_path}).")
            outputs = {}
            with torch.cuda.stream(self._stream):
                for name in RAW_OUTPUTS:
                    outputs[name] = torch.empty(tuple(context.get_tensor_shape(name)), dtype=self._io_dtypes[name],
                                                device=self.device)
            for name, tensor in ((INPUT_NAME, images), *outputs.items()):
                if not context.set_tensor_address(name, tensor.data_ptr()):
                    raise RuntimeError(f"TensorRT rejected the buffer of {name!r} (engine {self.engine_path}).")
            if not context.execute_async_v3(self._stream.cuda_stream):
                raise RuntimeError(f"TensorRT execution failed (engine {self.engine_path}; see the log).")
            images.record_stream(self._stream)  # keep the input's memory until the engine has read it
            caller.wait_stream(self._stream)
            for tensor in outputs.values():
                tensor.record_stream(caller)  # the caller reads the outputs on its stream
        return outputs["scores"], outputs["boxes"]

    def _check_shape(self, shape: Tuple[int, ...]) -> None:
        if len(shape) != 4 or shape[1] != 3 or tuple(shape[2:]) != self.input_size or shape[0] < 1:
            raise ValueError(f"Engine for {self.path.name!r} takes [N >= 1, 3, {self.input_size[0]}, "
                             f"{self.input_size[1]}] images, got {shape}.")

    # ----------------------------------------------------------------------------------------------- misc
    @property
    def class_names(self) -> List[str]:
        return list(self.metadata.get("class_names", []))

    def close(self) -> None:
        """Free the execution context and engine (context first, runtime last, as TensorRT requires)."""
        for attribute in ("_context", "_engine", "_runtime"):
            if hasattr(self, attribute):
                delattr(self, attribute)

    def __del__(self) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"TensorRTRunner({str(self.path)!r}, precision={self.precision!r}, max_batch={self.max_batch}, "
                f"device={str(self.device)!r}, engine={str(self.engine_path)!r})")
