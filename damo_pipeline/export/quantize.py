"""int8 graphs: ONNX Runtime static quantisation of an exported graph, calibrated on real images.

:func:`quantize_onnx` takes a raw (``nms=False``) float32 graph written by
:func:`damo_pipeline.export.export_onnx`, runs it over calibration photos preprocessed exactly like the
pipeline (RGB, cv2 ``INTER_LINEAR`` resize to the graph's input size with its resize mode, float32 NCHW
0..255), and writes a graph whose convolutions run in 8 bits (uint8 activations, int8 weights). The
input and outputs stay float32 with the same names, shapes and meaning, so the int8 graph drops in
wherever the float one is used. The ``damo_pipeline`` metadata is copied and gains a ``"quantization"``
entry with the settings.

Defaults, chosen by measurement (AMD EPYC with AVX512-VNNI, ONNX Runtime 1.32, 2 threads; latency as the
int8/float32 ratio of median network times at 640, batch 1 / batch 8; AP of DAMO-YOLO-T fine-tuned on bccd,
73 validation images, float32 graph AP 0.515):

* QDQ format (``QuantizeLinear``/``DequantizeLinear`` pairs that ONNX Runtime fuses into integer kernels):
  T 0.40x / 0.40x, against 0.47x / 0.40x for the QOperator form (QLinearConv and friends), same AP;
* uint8 activations, int8 per-channel weights, no range reduction (the VNNI setting). Per-tensor weights ran
  slower at batch 1 (0.54x) and scored AP 0.525, within the noise of 73 images;
* MinMax calibration: AP 0.513, against 0.504 (entropy) and 0.507 (percentile 99.999);
* :data:`DEFAULT_OP_TYPES`: every convolution and its activation (ReLU folded into it; SiLU, as Sigmoid and
  Mul, in M, L, Nano and T's SPP block), and the residual adds, concatenations, pooling and upsampling
  between them. Conv and ReLU alone: T 0.48x / 0.41x, M 0.51x / 0.47x (defaults: M 0.47x / 0.35x);
* the float tail (:func:`float_tail_nodes`: the score sigmoid, DFL softmax and box decode after the last
  convolutions) kept in float: quantising it costs 0.04 AP (0.471) and is no faster (0.46x / 0.40x). The
  head's convolutions are quantised: keeping them in float is slower (0.61x / 0.47x) for no AP (0.512).

int8 pays off for T, S, M and L. The Nano models (depthwise convolutions) gain little: Nano-S runs in
0.97x / 0.92x of its float32 time (1.35x / 1.67x, slower than float32, if its SiLU stays in float).
"""
from __future__ import annotations

import contextlib
import fnmatch
import glob
import io
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

from ..runtime.graph_metadata import INPUT_NAME, METADATA_KEY, metadata_from_map

logger = logging.getLogger(__name__)

__all__ = [
    "CALIBRATION_METHODS", "DEFAULT_FLOAT_NODES", "DEFAULT_OP_TYPES", "QUANT_FORMATS", "ImageCalibrationReader",
    "find_calibration_images", "float_tail_nodes", "quantize_onnx",
]

PathLike = Union[str, os.PathLike]
CALIBRATION_METHODS = ("minmax", "entropy", "percentile")
QUANT_FORMATS = ("qdq", "qoperator")
QUANT_TYPES = ("uint8", "int8")
DEFAULT_OP_TYPES = ("Conv", "Relu", "Sigmoid", "Mul", "Add", "Concat", "MaxPool", "Resize")
DEFAULT_FLOAT_NODES: Tuple[str, ...] = ()
DEFAULT_NUM_IMAGES = 100
INSTALL_HINT = "pip install 'damo_pipeline[onnx]'"
_GLOB_CHARS = set("*?[")


def _import_quantization() -> Any:
    """``onnxruntime.quantization``, or an ImportError that says how to install it."""
    try:
        import onnxruntime  # noqa: F401
        from onnxruntime import quantization
    except ImportError as e:
        raise ImportError(f"int8 quantisation needs onnxruntime, which is not installed: {INSTALL_HINT}") from e
    return quantization


def _image_suffixes() -> Tuple[str, ...]:
    from ..pipelines.inputs import IMAGE_SUFFIXES

    return IMAGE_SUFFIXES


def find_calibration_images(source: Union[PathLike, Sequence[PathLike]],
                            num_images: Optional[int] = DEFAULT_NUM_IMAGES) -> List[Path]:
    """The calibration photos: image files of a folder (recursive), a glob pattern or a list of files.

    Files are sorted by path; when there are more than ``num_images``, ``num_images`` of them evenly
    spread over the sorted list are kept (deterministic, and covering the whole folder rather than its
    first files).

    Args:
        source: a folder, a glob pattern (``"data/train/*.jpg"``), an image file, or a list of these.
        num_images: how many to keep (``None``: all).

    Returns:
        The selected image paths, sorted.

    Raises:
        FileNotFoundError: a folder or file that does not exist, or no image file found at all.
        ValueError: ``num_images`` below 1.
    """
    if num_images is not None and (isinstance(num_images, bool) or int(num_images) < 1):
        raise ValueError(f"num_images must be a positive int or None, got {num_images!r}.")
    sources = [source] if isinstance(source, (str, os.PathLike)) else list(source)
    suffixes = _image_suffixes()
    found = set()
    for item in sources:
        text = os.fspath(item)
        if _GLOB_CHARS & set(text) and not Path(text).exists():
            matches = [Path(p) for p in glob.glob(os.path.expanduser(text), recursive=True)]
            found.update(p for p in matches if p.is_file() and p.suffix.lower() in suffixes)
            continue
        path = Path(text).expanduser()
        if path.is_dir():
            found.update(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in suffixes)
        elif path.is_file():
            found.add(path)
        else:
            raise FileNotFoundError(f"Calibration source {text!r} does not exist; pass a folder of images, a glob "
                                    f"pattern such as 'images/*.jpg', or image files.")
    files = sorted(found)
    if not files:
        raise FileNotFoundError(f"No calibration images found in {[os.fspath(s) for s in sources]!r} (looked for "
                                f"{', '.join(suffixes)}); point it at a folder of real photos like the ones the "
                                f"model will see.")
    if num_images is not None and len(files) > num_images:
        picks = np.linspace(0, len(files) - 1, int(num_images)).round().astype(int)
        files = [files[i] for i in sorted(set(picks.tolist()))]
    return files


class ImageCalibrationReader:
    """ONNX Runtime ``CalibrationDataReader`` over image files, preprocessed like the pipeline.

    Each feed is ``{input_name: float32 [B, 3, H, W]}``: RGB (EXIF orientation applied), resized with
    :func:`damo_pipeline.ops.resize.resize_image` (cv2 ``INTER_LINEAR``, ``stretch`` or ``letterbox``),
    CHW, values 0..255. Images are read lazily, one feed at a time. With a fixed batch size ``B > 1``
    the last feed is filled up by repeating images. ``set_range`` limits the feeds to a window, which
    ONNX Runtime uses to calibrate in chunks with bounded memory.

    Args:
        files: image files.
        img_size: ``(height, width)`` of the graph's input.
        resize: ``"stretch"`` or ``"letterbox"``.
        batch_size: images per feed (the graph's fixed batch, or 1 for a dynamic batch).
        input_name: the graph's input name.
        progress: show a tqdm bar (``None``: only on a TTY).
    """

    def __init__(self, files: Sequence[PathLike], img_size: Tuple[int, int], resize: str = "stretch",
                 batch_size: int = 1, input_name: str = INPUT_NAME, progress: Optional[bool] = None) -> None:
        if not files:
            raise ValueError("ImageCalibrationReader needs at least one image file.")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
        self.files = [Path(f) for f in files]
        self.img_size = (int(img_size[0]), int(img_size[1]))
        self.resize = resize
        self.batch_size = int(batch_size)
        self.input_name = input_name
        count = -(-len(self.files) // self.batch_size)
        self.batches = [[self.files[(b * self.batch_size + i) % len(self.files)] for i in range(self.batch_size)]
                        for b in range(count)]
        self._range = (0, len(self.batches))
        self._iter: Optional[Iterator[int]] = None
        self._bar = None
        self._progress = progress

    def __len__(self) -> int:
        return len(self.batches)

    def set_range(self, start_index: int, end_index: int) -> None:
        """Feed only batches ``start_index:end_index`` from the next ``get_next`` on."""
        self._range = (max(0, start_index), min(len(self.batches), end_index))
        self._iter = None

    def preprocess(self, path: PathLike) -> np.ndarray:
        """One image as the network input: float32 ``[3, H, W]``, RGB, 0..255."""
        from ..ops.resize import resize_image
        from ..pipelines.inputs import ImageLoadOptions, load_image

        rgb = load_image(Path(path), ImageLoadOptions()).rgb
        canvas, _ = resize_image(rgb, self.img_size, self.resize)
        return np.ascontiguousarray(canvas.transpose(2, 0, 1), dtype=np.float32)

    def get_next(self) -> Optional[Dict[str, np.ndarray]]:
        """The next feed, or None when the range is exhausted."""
        if self._bar is None:
            from tqdm import tqdm

            self._bar = tqdm(total=len(self.batches), desc="int8 calibration", unit="batch", leave=False,
                             disable=None if self._progress is None else not self._progress)
        if self._iter is None:
            self._iter = iter(range(*self._range))
        index = next(self._iter, None)
        if index is None:
            return None
        feed = np.stack([self.preprocess(f) for f in self.batches[index]])
        self._bar.update(1)
        return {self.input_name: feed}

    def close(self) -> None:
        """Close the progress bar."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def _graph_input(model: Any) -> Tuple[str, int, Optional[int]]:
    """``(name, elem_type, fixed batch or None)`` of the graph's single input."""
    inputs = [i for i in model.graph.input if i.name not in {t.name for t in model.graph.initializer}]
    if len(inputs) != 1:
        raise ValueError(f"Expected a graph with one image input, found {[i.name for i in inputs]}.")
    tensor_type = inputs[0].type.tensor_type
    batch_dim = tensor_type.shape.dim[0]
    batch = batch_dim.dim_value if batch_dim.HasField("dim_value") and batch_dim.dim_value > 0 else None
    return inputs[0].name, tensor_type.elem_type, batch


def _check_source(fp32_onnx: Path) -> Tuple[Dict[str, Any], Any]:
    """The metadata and ModelProto of a graph we can quantise, or a clear error."""
    import onnx

    if not fp32_onnx.is_file():
        raise FileNotFoundError(f"ONNX graph {str(fp32_onnx)!r} does not exist; export one first with "
                                f"damo_pipeline.export.export_onnx or damo-export.")
    model = onnx.load(str(fp32_onnx))
    meta = metadata_from_map({p.key: p.value for p in model.metadata_props}, str(fp32_onnx))
    if meta.get("nms"):
        raise ValueError(f"{str(fp32_onnx)!r} ends in NonMaxSuppression (exported with nms=True); quantise the raw "
                         f"graph instead (export with nms=False) and run NMS on its float outputs.")
    if meta.get("quantization"):
        raise ValueError(f"{str(fp32_onnx)!r} is already quantised ({meta['quantization'].get('format')}); "
                         f"quantise the float32 export.")
    _, elem_type, _ = _graph_input(model)
    if elem_type != onnx.TensorProto.FLOAT:
        raise ValueError(f"{str(fp32_onnx)!r} takes {onnx.TensorProto.DataType.Name(elem_type)} input; int8 "
                         f"quantisation starts from float32: export with half=False.")
    return meta, model


def float_tail_nodes(model: Any) -> List[str]:
    """Names of the nodes after the last convolutions: those no Conv depends on.

    In a DAMO-YOLO graph these are the head's class sigmoid, the DFL softmax and integral, the box decode
    (anchor points and distances to pixel xyxy) and the reshapes and concatenations that lay out ``scores``
    and ``boxes``: arithmetic on the outputs themselves, cheap in float and lossy in 8 bits.
    """
    producers = {out: node for node in model.graph.node for out in node.output}
    feeds_conv = set()
    stack = [node for node in model.graph.node if node.op_type == "Conv"]
    while stack:
        node = stack.pop()
        if node.name in feeds_conv:
            continue
        feeds_conv.add(node.name)
        stack.extend(producers[i] for i in node.input if i in producers)
    return [node.name for node in model.graph.node if node.name not in feeds_conv]


def _matching_nodes(model: Any, patterns: Sequence[str]) -> List[str]:
    """Names of the nodes matching any of the fnmatch ``patterns``."""
    return [n.name for n in model.graph.node if any(fnmatch.fnmatchcase(n.name, p) for p in patterns)]


def _resolve_choice(value: str, choices: Sequence[str], name: str) -> str:
    if not isinstance(value, str) or value.lower() not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}.")
    return value.lower()


def quantize_onnx(fp32_onnx: PathLike, out_path: PathLike, calibration_images: Union[PathLike, Sequence[PathLike]],
                  num_images: Optional[int] = DEFAULT_NUM_IMAGES, method: str = "minmax", per_channel: bool = True,
                  quant_format: str = "qdq", op_types: Optional[Sequence[str]] = DEFAULT_OP_TYPES,
                  float_tail: bool = True, float_nodes: Sequence[str] = DEFAULT_FLOAT_NODES,
                  activation_type: str = "uint8", weight_type: str = "int8", reduce_range: bool = False,
                  percentile: float = 99.999, preprocess: bool = True, progress: Optional[bool] = None) -> Path:
    """Quantise an exported float32 graph to int8 with ONNX Runtime static quantisation.

    Args:
        fp32_onnx: a raw graph from :func:`damo_pipeline.export.export_onnx` (``nms=False``, float32); a fixed
            or dynamic batch.
        out_path: the int8 ``.onnx`` to write (atomically).
        calibration_images: real photos like the deployment's: a folder (searched recursively), a glob
            pattern, an image file or a list of these (see :func:`find_calibration_images`).
        num_images: calibration images to use, evenly spread over the sorted files (``None``: all).
        method: activation ranges from ``"minmax"`` (observed min/max), ``"entropy"`` (KL-divergence
            thresholds) or ``"percentile"`` (the ``percentile`` of absolute values).
        per_channel: one weight scale per output channel (more accurate, as fast with VNNI).
        quant_format: ``"qdq"`` (QuantizeLinear/DequantizeLinear pairs, fused by ONNX Runtime into integer
            kernels) or ``"qoperator"`` (QLinearConv and friends written into the graph).
        op_types: operator types to quantise (``None``: every type ONNX Runtime can quantise).
        float_tail: keep the nodes after the last convolutions in float (:func:`float_tail_nodes`: the score
            sigmoid, DFL softmax and box decode).
        float_nodes: fnmatch patterns of more node names kept in float, e.g. ``"/head/*"`` for the whole head.
        activation_type / weight_type: ``"uint8"`` or ``"int8"`` (x86 prefers uint8 activations with int8
            weights; ARM symmetric int8 for both).
        reduce_range: 7-bit weights, for x86 CPUs without VNNI.
        percentile: the percentile for ``method="percentile"``.
        preprocess: run ONNX Runtime's ``quant_pre_process`` (shape inference and graph optimisation) first.
        progress: show a progress bar over the calibration images (``None``: only on a TTY).

    Returns:
        The path written. Its ``damo_pipeline`` metadata (:func:`damo_pipeline.export.read_metadata`) is the
        source graph's plus ``"quantization"``: the settings above and the number of calibration images.

    Raises:
        ImportError: onnxruntime is not installed.
        FileNotFoundError: the graph or the calibration images do not exist.
        ValueError: a graph exported with ``nms=True``, ``half=True``, not by damo_pipeline or already
            quantised; an unknown option value.
    """
    quantization = _import_quantization()
    import onnx
    import onnxruntime

    method = _resolve_choice(method, CALIBRATION_METHODS, "method")
    quant_format = _resolve_choice(quant_format, QUANT_FORMATS, "quant_format")
    activation_type = _resolve_choice(activation_type, QUANT_TYPES, "activation_type")
    weight_type = _resolve_choice(weight_type, QUANT_TYPES, "weight_type")
    if not 0.0 < percentile <= 100.0:
        raise ValueError(f"percentile must be in (0, 100], got {percentile!r}.")
    fp32_onnx, out_path = Path(fp32_onnx), Path(out_path)
    meta, source_model = _check_source(fp32_onnx)
    files = find_calibration_images(calibration_images, num_images)
    input_name, _, fixed_batch = _graph_input(source_model)
    img_size = meta["img_size"]
    height, width = (img_size, img_size) if isinstance(img_size, int) else img_size
    reader = ImageCalibrationReader(files, (int(height), int(width)), meta.get("resize", "stretch"),
                                    batch_size=fixed_batch or 1, input_name=input_name, progress=progress)
    types = {"uint8": quantization.QuantType.QUInt8, "int8": quantization.QuantType.QInt8}
    methods = {"minmax": quantization.CalibrationMethod.MinMax, "entropy": quantization.CalibrationMethod.Entropy,
               "percentile": quantization.CalibrationMethod.Percentile}
    formats = {"qdq": quantization.QuantFormat.QDQ, "qoperator": quantization.QuantFormat.QOperator}
    extra_options: Dict[str, Any] = {
        # one image (one feed) per collect_data call: ranges and histograms are merged as they come, so
        # memory stays at one image's activations whatever the number of images.
        "CalibStridedMinMax": 1,
    }
    if method == "percentile":
        extra_options["CalibPercentile"] = float(percentile)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".int8-", dir=out_path.parent) as work:
        model_input = fp32_onnx
        if preprocess:
            model_input = Path(work) / "preprocessed.onnx"
            _pre_process(quantization, fp32_onnx, model_input)
        prepared = onnx.load(str(model_input), load_external_data=False)
        kept_float = set(_matching_nodes(prepared, float_nodes)) | set(float_tail_nodes(prepared) if float_tail else ())
        excluded = [node.name for node in prepared.graph.node if node.name in kept_float]
        logger.info("Calibrating %s on %d image(s) (%s, %s)", fp32_onnx.name, len(files), method, quant_format)
        part = Path(work) / "int8.onnx"
        captured = io.StringIO()
        try:
            with contextlib.redirect_stdout(captured):  # the histogram calibrators print their progress
                quantization.quantize_static(
                    str(model_input), str(part), reader, quant_format=formats[quant_format],
                    op_types_to_quantize=list(op_types) if op_types is not None else None, per_channel=per_channel,
                    reduce_range=reduce_range, activation_type=types[activation_type], weight_type=types[weight_type],
                    nodes_to_exclude=excluded, calibrate_method=methods[method], extra_options=extra_options)
        finally:
            reader.close()
            if captured.getvalue():
                logger.debug("onnxruntime calibration output:\n%s", captured.getvalue())
        quantized = onnx.load(str(part))
        settings = {
            "format": quant_format, "method": method, "per_channel": per_channel, "activation_type": activation_type,
            "weight_type": weight_type, "reduce_range": reduce_range,
            "op_types": list(op_types) if op_types is not None else None, "float_tail": float_tail,
            "float_nodes": list(float_nodes),
            "num_float_nodes": len(excluded), "percentile": percentile if method == "percentile" else None,
            "preprocessed": preprocess, "calibration_images": len(files),
            "onnxruntime_version": onnxruntime.__version__,
        }
        _set_metadata(quantized, {**meta, "quantization": settings})
        onnx.checker.check_model(quantized)
        tmp = Path(work) / "final.onnx"
        onnx.save(quantized, str(tmp))
        os.replace(tmp, out_path)
    logger.info("Wrote int8 graph %s (%d calibration images)", out_path, len(files))
    return out_path


def _pre_process(quantization: Any, source: Path, target: Path) -> None:
    """ONNX Runtime's ``quant_pre_process``: symbolic shape inference (with ``auto_merge``, which the dynamic
    batch axis needs) and graph optimisation, so the quantiser sees folded shapes and fused nodes."""
    try:
        quantization.quant_pre_process(str(source), str(target), auto_merge=True)
    except Exception as e:  # noqa: BLE001 - the symbolic shape inference raises a bare Exception
        logger.warning("Symbolic shape inference failed on %s (%s); pre-processing with ONNX shape inference only.",
                       source.name, e)
        quantization.quant_pre_process(str(source), str(target), skip_symbolic_shape=True)


def _set_metadata(model: Any, meta: Dict[str, Any]) -> None:
    """Replace (or add) the ``damo_pipeline`` metadata entry of ``model``."""
    kept = [(p.key, p.value) for p in model.metadata_props if p.key != METADATA_KEY]
    del model.metadata_props[:]
    for key, value in kept + [(METADATA_KEY, json.dumps(meta))]:
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
