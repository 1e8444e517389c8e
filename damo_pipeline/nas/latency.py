"""Measured latency: a per-device lookup table of layer timings, calibrated on whole detectors.

* :class:`LatencyTable` — times the layers a search actually meets on the target device and keeps them on
  disk, keyed by device name, torch version, thread count, dtype and batch. Convolutions are timed on a
  grid of channel counts per (kernel, stride, groups, input size) and interpolated bilinearly (a conv's cost
  is close to bilinear in its input and output widths, so the grid is exact for the dominant term);
  elementwise layers (activations, adds, concats, pools, upsampling) on a grid of element counts. A grid
  point is timed the first time a query needs it, so only the shapes the space can produce are ever timed.
* :class:`LatencyModel` — latency of the *whole deployed detector* (fused, batch 1, the template's input
  size): the table summed over :class:`~.cost.CostModel`'s op list, times a scale fitted on detectors that
  were really built with :func:`damo_pipeline.models.build_model`, fused and timed end to end. End-to-end
  timings (median of repeats) are cached in the table file too, so a repeated search with the same seed
  reproduces the same result on the same machine.

Timers are injectable: :class:`TorchOpTimer` / :func:`torch_detector_timer` measure, :class:`AnalyticOpTimer`
and :func:`analytic_detector_timer` return a deterministic cost (tests, dry runs without timing).
"""
from __future__ import annotations

import bisect
import json
import logging
import math
import os
import platform
import re
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Protocol, Sequence, Tuple, Union

from damo_pipeline.models import ModelConfig

from .cost import CostModel
from .ops import Op, backbone_out_channels
from .space import Structure, structure_key

logger = logging.getLogger(__name__)

TABLE_FORMAT = "damo_pipeline.nas.latency_table/1"
CHANNEL_LADDER: Tuple[int, ...] = (8, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048,
                                   3072, 4096)
"""Channel counts at which convolutions are timed (every shipped TinyNAS width lies on it)."""
NUMEL_LADDER: Tuple[int, ...] = tuple(2 ** e for e in range(8, 27))
"""Element counts at which elementwise layers are timed."""

DetectorTimer = Callable[[ModelConfig], List[float]]
"""Times a whole detector built from a config; returns the samples in milliseconds."""


class OpTimer(Protocol):
    """Times single layers on one device (milliseconds per call at batch 1)."""

    def description(self) -> Dict[str, Any]:
        """What the timings depend on (device name, torch version, threads, dtype, batch)."""

    def time_conv(self, c_in: int, c_out: int, k: int, s: int, groups: int, h: int, w: int) -> float:
        """One biased conv2d with 'same' padding on a ``[1, c_in, h, w]`` input."""

    def time_eltwise(self, kind: str, numel: int, param: int) -> float:
        """One elementwise layer of ``kind`` producing ``numel`` elements."""


def nas_cache_dir() -> Path:
    """``$DAMO_PIPELINE_CACHE/nas`` (default ``$XDG_CACHE_HOME/damo_pipeline/nas`` or ``~/.cache/...``)."""
    root = os.environ.get("DAMO_PIPELINE_CACHE")
    if not root:
        root = str(Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "damo_pipeline")
    return Path(root).expanduser() / "nas"


def device_name(device: str) -> str:
    """A human name of ``device``: the CUDA device name, or the CPU model from the OS."""
    import torch

    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "cpu"


def _check_device(device: str) -> None:
    import torch

    if device != "cpu" and not re.fullmatch(r"cuda(:\d+)?", device):
        raise ValueError(f"device must be 'cpu', 'cuda' or 'cuda:N', got {device!r}.")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} was asked for but torch.cuda.is_available() is False; use 'cpu'.")


CLOCKS: Dict[str, Callable[[], float]] = {"wall": time.perf_counter, "process": time.process_time}
"""``wall``: elapsed time (what a user waits). ``process``: CPU time of this process, which other processes
cannot inflate; with one thread (``torch.set_num_threads(1)``) it equals the uncontended single-thread wall time,
so it is the stable choice on a shared, busy machine. CUDA timings always use the wall clock."""


def _clock(name: str, device: str) -> Callable[[], float]:
    if name not in CLOCKS:
        raise ValueError(f"clock must be one of {sorted(CLOCKS)}, got {name!r}.")
    if name == "process" and device != "cpu":
        raise ValueError("clock='process' measures CPU time and only makes sense with device='cpu'.")
    if name == "process":
        import torch

        if torch.get_num_threads() != 1:
            logger.warning("clock='process' with %d torch threads sums the CPU time of all threads; use "
                           "torch.set_num_threads(1) (--threads 1) for single-thread latency.", torch.get_num_threads())
    return CLOCKS[name]


class _FlushDenormals:
    """Treat denormal floats as zero while timing (restored afterwards).

    Randomly initialised deep stacks shrink their activations into the denormal range, where CPU arithmetic
    is up to 100x slower; trained weights do not, so timings of untrained detectors would be meaningless.
    """

    def __enter__(self) -> None:
        import torch

        torch.set_flush_denormal(True)

    def __exit__(self, *exc: Any) -> None:
        import torch

        torch.set_flush_denormal(False)


def _sample_ms(fn: Callable[[], Any], sync: Callable[[], None], warmup: int, repeats: int,
               min_sample_ms: float, clock: Callable[[], float] = time.perf_counter) -> List[float]:
    for _ in range(warmup):
        fn()
    sync()
    start = clock()
    fn()
    sync()
    single = max((clock() - start) * 1000.0, 1e-4)
    inner = max(1, math.ceil(min_sample_ms / single))
    samples = []
    for _ in range(repeats):
        start = clock()
        for _ in range(inner):
            fn()
        sync()
        samples.append((clock() - start) * 1000.0 / inner)
    return samples


class TorchOpTimer:
    """Times layers with torch on ``device``: ``repeats`` samples after ``warmup`` calls.

    Fast layers are looped inside a sample until it lasts ``min_sample_ms``. CUDA timings synchronise. A
    layer's time is the *minimum* of its samples by default: other processes only ever add time, so on a
    shared machine the minimum is the stable estimate of a layer's own cost (the whole-detector timings that
    calibrate the table use the median).
    """

    def __init__(self, device: str = "cpu", warmup: int = 2, repeats: int = 7, min_sample_ms: float = 1.0,
                 statistic: str = "min", clock: str = "wall") -> None:
        _check_device(device)
        if statistic not in ("min", "median"):
            raise ValueError(f"statistic must be 'min' or 'median', got {statistic!r}.")
        self._clock = _clock(clock, device)
        self.clock = clock
        self.device = device
        self.warmup, self.repeats, self.min_sample_ms = warmup, repeats, min_sample_ms
        self.statistic = statistic

    def description(self) -> Dict[str, Any]:
        import torch

        return {"timer": "torch", "device_type": "cuda" if self.device.startswith("cuda") else "cpu",
                "device_name": device_name(self.device), "torch": torch.__version__,
                "threads": torch.get_num_threads() if self.device == "cpu" else 0, "dtype": "float32", "batch": 1,
                "statistic": self.statistic, "clock": self.clock, "flush_denormal": True}

    def _sync(self) -> None:
        import torch

        if self.device.startswith("cuda"):
            torch.cuda.synchronize(torch.device(self.device))

    def _run(self, fn: Callable[[], Any]) -> float:
        import torch

        with torch.inference_mode(), _FlushDenormals():
            samples = _sample_ms(fn, self._sync, self.warmup, self.repeats, self.min_sample_ms, self._clock)
        return min(samples) if self.statistic == "min" else statistics.median(samples)

    def time_conv(self, c_in: int, c_out: int, k: int, s: int, groups: int, h: int, w: int) -> float:
        import torch

        conv = torch.nn.Conv2d(c_in, c_out, k, s, k // 2, groups=groups, bias=True).to(self.device).eval()
        x = torch.randn(1, c_in, h, w, device=self.device)
        return self._run(lambda: conv(x))

    def time_eltwise(self, kind: str, numel: int, param: int) -> float:
        import torch
        import torch.nn.functional as F

        side = 20 if numel >= 400 else max(1, int(math.sqrt(numel)))
        channels = max(1, numel // (side * side))
        x = torch.randn(1, channels, side, side, device=self.device)
        y = torch.randn_like(x)
        half = torch.randn(1, max(1, numel // 2), device=self.device)
        small = torch.randn(1, max(1, channels // 4), side, side, device=self.device)
        fns: Dict[str, Callable[[], Any]] = {
            "relu": lambda: torch.relu_(x), "silu": lambda: F.silu(x, inplace=True), "add": lambda: x + y,
            "cat": lambda: torch.cat([half, half], dim=1),
            "maxpool": lambda: F.max_pool2d(x, param or 3, 1, (param or 3) // 2),
            "upsample": lambda: F.interpolate(small, scale_factor=2, mode="nearest"),
            "matmul": lambda: torch.sigmoid(x), "other": lambda: torch.sigmoid(x),
        }
        if kind not in fns:
            raise ValueError(f"Unknown elementwise kind {kind!r}; known: {sorted(fns)}.")
        return self._run(fns[kind])


@dataclass
class AnalyticOpTimer:
    """A deterministic stand-in for :class:`TorchOpTimer`: cost = overhead + work / throughput.

    Used by the tests (timing-independent searches) and for dry runs; the numbers are not a measurement.

    Attributes:
        gmacs_per_ms: conv throughput (multiply-accumulates per millisecond, in 1e9).
        gelems_per_ms: elementwise throughput (elements per millisecond, in 1e9).
        overhead_ms: fixed cost per layer call.
    """

    gmacs_per_ms: float = 0.05
    gelems_per_ms: float = 0.5
    overhead_ms: float = 0.01

    def description(self) -> Dict[str, Any]:
        return {"timer": "analytic", "device_type": "analytic", "device_name": "analytic", "torch": "-",
                "threads": 0, "dtype": "float32", "batch": 1, "gmacs_per_ms": self.gmacs_per_ms,
                "gelems_per_ms": self.gelems_per_ms, "overhead_ms": self.overhead_ms}

    def time_conv(self, c_in: int, c_out: int, k: int, s: int, groups: int, h: int, w: int) -> float:
        macs = Op("conv", c_in, c_out, k, s, groups, h, w).macs
        return self.overhead_ms + macs / (self.gmacs_per_ms * 1e9)

    def time_eltwise(self, kind: str, numel: int, param: int) -> float:
        weight = max(1, param) if kind == "maxpool" else 1
        return self.overhead_ms + numel * weight / (self.gelems_per_ms * 1e9)


def _bracket(value: int, ladder: Sequence[int]) -> Tuple[int, int]:
    """Neighbouring ladder points around ``value`` (equal when it is on the ladder; the end pair outside)."""
    if value <= ladder[0]:
        return (ladder[0], ladder[0]) if value == ladder[0] else (ladder[0], ladder[1])
    if value >= ladder[-1]:
        return (ladder[-1], ladder[-1]) if value == ladder[-1] else (ladder[-2], ladder[-1])
    i = bisect.bisect_left(ladder, value)
    if ladder[i] == value:
        return value, value
    return ladder[i - 1], ladder[i]


def _lerp(x: float, x0: float, x1: float, y0: float, y1: float) -> float:
    return y0 if x1 == x0 else y0 + (y1 - y0) * (x - x0) / (x1 - x0)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "-", text).strip("-").lower()[:60] or "device"


class LatencyTable:
    """Layer timings of one device, filled on demand and persisted as JSON (see the module docstring).

    Args:
        timer: measures layers that are not in the table yet.
        path: JSON file; loaded when it exists (its device description must match the timer's).

    Raises:
        ValueError: the file was measured on another device / torch version / thread count, or is not a table.
    """

    def __init__(self, timer: OpTimer, path: Optional[Union[str, Path]] = None) -> None:
        self.timer = timer
        self.device = dict(timer.description())
        self.path = Path(path) if path is not None else None
        self.conv: Dict[str, Dict[str, float]] = {}
        self.eltwise: Dict[str, Dict[str, float]] = {}
        self.detectors: Dict[str, Dict[str, Any]] = {}
        self.calibrations: Dict[str, Dict[str, Any]] = {}
        self.timed = 0
        self._memo: Dict[Op, float] = {}
        if self.path is not None and self.path.is_file():
            self._load(self.path)

    @classmethod
    def default_path(cls, timer: OpTimer, cache_dir: Optional[Union[str, Path]] = None) -> Path:
        """``<cache>/latency-<device>-<type>-torch<version>-<threads>t-b1-float32-<clock>.json``."""
        d = timer.description()
        name = f"latency-{_slug(d['device_name'])}-{d['device_type']}-torch{_slug(str(d['torch']))}-" \
               f"{d['threads']}t-b{d['batch']}-{d['dtype']}-{d.get('clock', 'wall')}.json"
        return Path(cache_dir).expanduser() / name if cache_dir is not None else nas_cache_dir() / name

    def _load(self, path: Path) -> None:
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise ValueError(f"Latency table {str(path)!r} cannot be read ({e}); delete it to re-measure.") from e
        if not isinstance(data, dict) or data.get("format") != TABLE_FORMAT:
            raise ValueError(f"{str(path)!r} is not a latency table (format {TABLE_FORMAT!r}); pass another path.")
        if data.get("device") != self.device:
            raise ValueError(f"Latency table {str(path)!r} was measured on {data.get('device')}, not on "
                             f"{self.device}; use a table of this device (or a new path) to re-measure.")
        self.conv = data.get("conv", {})
        self.eltwise = data.get("eltwise", {})
        self.detectors = data.get("detectors", {})
        self.calibrations = data.get("calibrations", {})

    def to_dict(self) -> Dict[str, Any]:
        return {"format": TABLE_FORMAT, "device": self.device, "conv": self.conv, "eltwise": self.eltwise,
                "detectors": self.detectors, "calibrations": self.calibrations}

    def save(self, path: Optional[Union[str, Path]] = None) -> Optional[Path]:
        """Write the table atomically (to ``path`` or the table's own path; nothing when neither is set)."""
        target = Path(path) if path is not None else self.path
        if target is None:
            return None
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=1, sort_keys=True))
        os.replace(tmp, target)
        return target

    def _conv_point(self, context: str, op: Op, c_in: int, c_out: int) -> float:
        entries = self.conv.setdefault(context, {})
        key = f"{c_in}x{c_out}"
        if key not in entries:
            entries[key] = float(self.timer.time_conv(c_in, c_out, op.k, op.s, op.groups, op.h, op.w))
            self.timed += 1
            logger.debug("timed conv %s %s: %.4f ms", context, key, entries[key])
        return entries[key]

    def _eltwise_point(self, context: str, op: Op, numel: int) -> float:
        entries = self.eltwise.setdefault(context, {})
        key = str(numel)
        if key not in entries:
            entries[key] = float(self.timer.time_eltwise(op.kind, numel, op.param))
            self.timed += 1
        return entries[key]

    def conv_ms(self, op: Op) -> float:
        """Milliseconds of a conv: bilinear in (c_in, c_out) between timed grid points."""
        context = f"k{op.k}s{op.s}g{op.groups}h{op.h}w{op.w}"
        if op.groups != 1:
            return self._conv_point(context, op, op.c_in, op.c_out)
        i0, i1 = _bracket(op.c_in, CHANNEL_LADDER)
        o0, o1 = _bracket(op.c_out, CHANNEL_LADDER)
        low = _lerp(op.c_out, o0, o1, self._conv_point(context, op, i0, o0), self._conv_point(context, op, i0, o1))
        if i1 == i0:
            return low
        high = _lerp(op.c_out, o0, o1, self._conv_point(context, op, i1, o0), self._conv_point(context, op, i1, o1))
        return _lerp(op.c_in, i0, i1, low, high)

    def eltwise_ms(self, op: Op) -> float:
        """Milliseconds of an elementwise layer: linear in the element count between timed grid points."""
        context = f"{op.kind}{op.param}" if op.kind == "maxpool" else op.kind
        n0, n1 = _bracket(op.numel, NUMEL_LADDER)
        return _lerp(op.numel, n0, n1, self._eltwise_point(context, op, n0), self._eltwise_point(context, op, n1))

    def op_ms(self, op: Op) -> float:
        """Milliseconds of one op (memoised; never negative)."""
        value = self._memo.get(op)
        if value is None:
            value = max(0.0, self.conv_ms(op) if op.kind == "conv" else self.eltwise_ms(op))
            self._memo[op] = value
        return value

    def ops_ms(self, ops: Sequence[Op]) -> float:
        """Sum of :meth:`op_ms` over ``ops``."""
        return sum(self.op_ms(op) for op in ops)


def torch_detector_timer(device: str = "cpu", warmup: int = 3, repeats: int = 15, clock: str = "wall"
                         ) -> DetectorTimer:
    """A :data:`DetectorTimer` that builds the config, fuses it and times ``model(x)`` at batch 1.

    Each sample is one forward pass of a ``[1, 3, img_size, img_size]`` input under ``inference_mode``,
    timed with ``clock`` (see :data:`CLOCKS`), with denormals flushed to zero (the random weights of an
    untrained detector would otherwise run into slow denormal arithmetic that trained weights never see).
    """
    _check_device(device)
    now = _clock(clock, device)

    def timer(config: ModelConfig) -> List[float]:
        import torch

        from damo_pipeline.models import build_model

        model = build_model(config).fuse().eval().to(device)
        x = torch.rand(1, 3, config.img_size, config.img_size, device=device) * 255

        def sync() -> None:
            if device.startswith("cuda"):
                torch.cuda.synchronize(torch.device(device))

        samples = []
        with torch.inference_mode(), _FlushDenormals():
            for _ in range(warmup):
                model(x)
            sync()
            for _ in range(repeats):
                start = now()
                model(x)
                sync()
                samples.append((now() - start) * 1000.0)
        return samples

    return timer


def analytic_detector_timer(op_timer: Optional[AnalyticOpTimer] = None, scale: float = 1.1) -> DetectorTimer:
    """A deterministic :data:`DetectorTimer`: ``scale`` x the analytic op costs of the built config.

    The whole config is traced (backbone included) through :func:`.ops.trace_ops`, so it exercises the same
    path as a real end-to-end timing without depending on the machine's speed.
    """
    op_timer = op_timer or AnalyticOpTimer()

    def timer(config: ModelConfig) -> List[float]:
        import torch

        from damo_pipeline.models import build_model

        from .ops import trace_ops

        with torch.device("meta"):
            model = build_model(config).fuse().eval()
            x = torch.zeros(1, 3, config.img_size, config.img_size)
            ops = trace_ops(lambda: model(x))
        total = 0.0
        for op in ops:
            if op.kind == "conv":
                total += op_timer.time_conv(op.c_in, op.c_out, op.k, op.s, op.groups, op.h, op.w)
            else:
                total += op_timer.time_eltwise(op.kind, op.numel, op.param)
        return [scale * total]

    return timer


@dataclass
class Calibration:
    """``measured ~= scale x table sum`` fitted on whole detectors (median of the per-detector ratios)."""

    scale: float
    points: List[Dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> Dict[str, Any]:
        return {"scale": self.scale, "points": list(self.points)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Calibration":
        return cls(float(data["scale"]), list(data.get("points", [])))


class LatencyModel:
    """Predicted and measured latency (ms, batch 1) of the deployed detector of a structure.

    Args:
        cost_model: gives the detector's op list for the template.
        table: layer timings of the target device.
        detector_timer: times whole detectors (calibration and re-ranking); ``None`` disables both.
    """

    def __init__(self, cost_model: CostModel, table: LatencyTable, detector_timer: Optional[DetectorTimer] = None
                 ) -> None:
        self.cost_model = cost_model
        self.table = table
        self.detector_timer = detector_timer
        self.calibration = Calibration(1.0)
        self._neck_head_ms: Dict[Tuple[int, ...], float] = {}

    @property
    def template_key(self) -> str:
        t = self.cost_model.template
        return f"{t.family}|{t.base}|{t.img_size}"

    def table_ms(self, structure: Structure, backbone_ops: Optional[Sequence[Op]] = None) -> float:
        """Uncalibrated sum of layer timings over the whole detector (``backbone_ops``: precomputed ops)."""
        widths = tuple(backbone_out_channels(structure, self.cost_model.template.family))
        neck_head = self._neck_head_ms.get(widths)
        if neck_head is None:
            neck_head = self.table.ops_ms(self.cost_model.neck_head(widths).ops)
            self._neck_head_ms[widths] = neck_head
        ops = self.cost_model.backbone_ops(structure) if backbone_ops is None else backbone_ops
        return self.table.ops_ms(ops) + neck_head

    def predict_ms(self, structure: Structure, backbone_ops: Optional[Sequence[Op]] = None) -> float:
        """Calibrated prediction of the fused detector's latency."""
        return self.calibration.scale * self.table_ms(structure, backbone_ops)

    def measure_ms(self, structure: Structure, refresh: bool = False) -> Dict[str, Any]:
        """Time the real fused detector (cached in the table): ``{"median_ms", "samples"}``.

        Raises:
            ValueError: no detector timer was given.
        """
        if self.detector_timer is None:
            raise ValueError("Measuring a detector needs a detector_timer (e.g. torch_detector_timer('cpu')).")
        key = f"{self.template_key}|{structure_key(structure)}"
        if refresh or key not in self.table.detectors:
            config = self.cost_model.template.model_config(structure, name="latency-probe")
            samples = [float(v) for v in self.detector_timer(config)]
            self.table.detectors[key] = {"median_ms": statistics.median(samples), "samples": samples}
        return dict(self.table.detectors[key])

    def calibrate(self, references: Mapping[str, Structure], refresh: bool = False) -> Calibration:
        """Fit the table-to-real scale on ``references`` (re-used from the table unless ``refresh``).

        Without a detector timer the scale stays 1 (the prediction is the raw table sum).
        """
        stored = self.table.calibrations.get(self.template_key)
        if stored is not None and not refresh:
            self.calibration = Calibration.from_dict(stored)
            return self.calibration
        if self.detector_timer is None:
            self.calibration = Calibration(1.0, [])
            return self.calibration
        points = []
        for name, structure in references.items():
            measured = self.measure_ms(structure, refresh=refresh)["median_ms"]
            points.append({"name": name, "structure": structure_key(structure), "table_ms": self.table_ms(structure),
                           "measured_ms": measured})
        ratios = [p["measured_ms"] / p["table_ms"] for p in points if p["table_ms"] > 0]
        if not ratios:
            raise ValueError("Calibration needs at least one reference detector with a positive table latency.")
        self.calibration = Calibration(float(statistics.median(ratios)), points)
        self.table.calibrations[self.template_key] = self.calibration.to_dict()
        logger.info("latency calibration %s: scale %.3f from %s", self.template_key, self.calibration.scale,
                    [(p["name"], round(p["table_ms"], 2), round(p["measured_ms"], 2)) for p in points])
        return self.calibration
