"""GPU network latency of DAMO-YOLO at batch 1: torch fp32 (fused, eager), torch fp16 (fused, eager) and TensorRT
fp16, next to the official TensorRT fp16 latency on a T4 (``ZOO_CARDS``: T 2.78 ms, S 3.83 ms).

    PYTHONPATH=. python3 benchmarks/gpu_latency.py --out benchmarks/results/gpu_latency.json
    PYTHONPATH=. python3 benchmarks/gpu_latency.py --models damoyolo-t --runs 300 --device 0

Run it from the repository root (``PYTHONPATH=.``, or after ``pip install -e .``). What the machine needs:

* an NVIDIA GPU and a CUDA build of torch (exit code 2, with a message, when torch sees no GPU);
* ``onnx`` (export of the graph TensorRT builds from) and the package's own requirements that importing
  ``damo_pipeline.models`` pulls in (numpy, pillow, opencv-python-headless, safetensors, huggingface_hub, ...);
* for the TensorRT column, the TensorRT wheel matching torch's CUDA major version:
  ``pip install tensorrt-cu12`` (torch +cu12x) or ``tensorrt-cu13`` (torch +cu13x); it pulls
  ``tensorrt-cuXX-libs`` (the libraries, about 1 GB or more) and ``tensorrt-cuXX-bindings``. On a machine without
  package access, carry those wheels. Without TensorRT the table still has both torch columns, and the
  TensorRT column says why it is empty (``--require-tensorrt`` makes that exit code 3 instead).

What is measured: the network only (fused deploy model, no pre-processing, no NMS), batch 1, input already on
the GPU. Each call is timed with ``time.perf_counter`` around ``fn(); torch.cuda.synchronize()`` after warm-up,
so a latency includes kernel-launch overhead (large for eager torch, small for a TensorRT engine); the table
gives the median of ``--runs`` (>= 100) calls. torch fp32 runs with TF32 off (true fp32), cuDNN autotuning on;
torch fp16 runs channels-last. TensorRT builds an fp16 engine (TensorRT 10: the float32 graph with
``BuilderFlag.FP16``, as ``trtexec --fp16`` does; TensorRT 11: the float16 graph of ``export_onnx(half=True)``),
cached under ``--cache-dir``; the build time is reported. Weights are random: latency does not depend on them.
The official numbers were measured on a T4; on another GPU compare the columns with each other, not with them.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import numpy as np
import torch

from damo_pipeline.export import export_onnx
from damo_pipeline.models import build_model
from damo_pipeline.models._pretrained import ZOO_CARDS
from damo_pipeline.runtime.tensorrt_runner import TensorRTRunner, fp16_needs_half_graph, tensorrt_status

MIN_RUNS = 100
EXIT_NO_GPU = 2
EXIT_NO_TENSORRT = 3
COLUMNS = (("torch_fp32", "torch fp32 fused eager"), ("torch_fp16", "torch fp16 fused eager"),
           ("tensorrt_fp16", "TensorRT fp16"))


def time_cuda(fn: Callable[[], Any], warmup: int, runs: int) -> Dict[str, float]:
    """Latency of ``fn`` in ms: each call timed with a CUDA synchronize at its end, after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times: List[float] = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append((time.perf_counter() - start) * 1e3)
    times.sort()
    return {"median_ms": statistics.median(times), "p10_ms": times[len(times) // 10],
            "p90_ms": times[(len(times) * 9) // 10], "min_ms": times[0], "runs": runs}


def bench_model(name: str, args: argparse.Namespace, device: torch.device, trt_reason: Optional[str],
                workdir: Path) -> Dict[str, Any]:
    """All columns for one zoo model."""
    size = args.img_size
    card = ZOO_CARDS.get(name)
    row: Dict[str, Any] = {"model": name, "img_size": size, "batch": 1,
                           "official_ms": card.latency_ms if card else None,
                           "official_device": card.latency_device if card else None}
    torch.manual_seed(0)
    model = build_model(name).eval()
    fused = copy.deepcopy(model).fuse().to(device)
    images = torch.rand(1, 3, size, size, device=device) * 255

    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    with torch.inference_mode():
        row["torch_fp32"] = time_cuda(lambda: fused(images), args.warmup, args.runs)
        fused_half = copy.deepcopy(fused).half().to(memory_format=torch.channels_last)
        images_half = images.half().contiguous(memory_format=torch.channels_last)
        row["torch_fp16"] = time_cuda(lambda: fused_half(images_half), args.warmup, args.runs)
    print(f"{name}: torch fp32 {row['torch_fp32']['median_ms']:.2f} ms, "
          f"torch fp16 {row['torch_fp16']['median_ms']:.2f} ms", file=sys.stderr)

    if trt_reason is not None:
        row["tensorrt_fp16"] = {"unavailable": trt_reason}
        return row
    half_graph = fp16_needs_half_graph()
    graph = export_onnx(model, workdir / f"{name}_{size}{'_half' if half_graph else ''}.onnx", img_size=size,
                        batch=1, half=half_graph)
    runner = TensorRTRunner(graph, fp16=True, max_batch=1, device=device.index or 0, cache_dir=args.cache_dir)
    engine_input = images.to(torch.float16 if runner.input_dtype == np.float16 else torch.float32)
    with torch.inference_mode():
        timing = time_cuda(lambda: runner.run_torch(engine_input), args.warmup, args.runs)
    row["tensorrt_fp16"] = {**timing, "precision": runner.precision, "graph": "float16" if half_graph else "float32",
                            "strongly_typed": runner.plan.strongly_typed, "engine": str(runner.engine_path),
                            "loaded_from_cache": runner.loaded_from_cache, "build_s": runner.build_seconds}
    print(f"{name}: TensorRT fp16 {timing['median_ms']:.2f} ms", file=sys.stderr)
    return row


def _cell(entry: Dict[str, Any]) -> str:
    if "median_ms" not in entry:
        return "n/a"
    return f"{entry['median_ms']:.2f} (p90 {entry['p90_ms']:.2f})"


def markdown_table(report: Dict[str, Any]) -> str:
    """The results as a Markdown table with the official T4 numbers beside them."""
    lines = [f"GPU: {report['gpu']} (compute capability {report['compute_capability']}); torch {report['torch']}, "
             f"CUDA {report['cuda']}, TensorRT {report['tensorrt'] or 'not available'}. Batch 1, "
             f"{report['img_size']}x{report['img_size']}, network only, median ms of {report['runs']} "
             f"CUDA-synchronized calls (p90 in brackets).", "",
             "| model | official (T4, TensorRT fp16) | " + " | ".join(title for _, title in COLUMNS)
             + " | TensorRT fp16 vs torch fp32 |",
             "|---|---|" + "---|" * len(COLUMNS) + "---|"]
    for row in report["results"]:
        official = f"{row['official_ms']:.2f}" if row.get("official_ms") else "n/a"
        trt, fp32 = row["tensorrt_fp16"], row["torch_fp32"]
        speedup = f"{fp32['median_ms'] / trt['median_ms']:.1f}x faster" if "median_ms" in trt else "n/a"
        lines.append(f"| {row['model']} | {official} | " + " | ".join(_cell(row[key]) for key, _ in COLUMNS)
                     + f" | {speedup} |")
    if report.get("tensorrt_status"):
        lines += ["", f"TensorRT column empty: {report['tensorrt_status']}."]
    lines += ["", "The official numbers were measured on a T4; compare them with these only on a T4."]
    return "\n".join(lines)


def _write_json(path: Path, report: Dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".json.part", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(report, f, indent=2)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["damoyolo-t", "damoyolo-s"])
    parser.add_argument("--img-size", type=int, default=640)
    parser.add_argument("--runs", type=int, default=200, help=f"timed calls per column (>= {MIN_RUNS})")
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--device", type=int, default=0, help="CUDA device index")
    parser.add_argument("--cache-dir", type=Path, default=None,
                        help="TensorRT engine cache (default <damo_pipeline cache>/tensorrt)")
    parser.add_argument("--require-tensorrt", action="store_true",
                        help=f"exit with code {EXIT_NO_TENSORRT} when TensorRT cannot run, instead of leaving its "
                             f"column empty")
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = parser.parse_args(argv)
    if args.runs < MIN_RUNS:
        parser.error(f"--runs must be >= {MIN_RUNS}, got {args.runs}")
    if args.img_size % 32:
        parser.error(f"--img-size must be a multiple of 32, got {args.img_size}")
    unknown = [m for m in args.models if m not in ZOO_CARDS]
    if unknown:
        parser.error(f"unknown models {unknown}; choose from {sorted(ZOO_CARDS)}")
    return args


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    if not torch.cuda.is_available():
        print(f"gpu_latency: no CUDA GPU is visible (torch {torch.__version__}, torch.version.cuda="
              f"{torch.version.cuda}); this benchmark needs an NVIDIA GPU and a CUDA build of torch.", file=sys.stderr)
        return EXIT_NO_GPU
    if args.device >= torch.cuda.device_count():
        print(f"gpu_latency: --device {args.device} does not exist ({torch.cuda.device_count()} visible).",
              file=sys.stderr)
        return EXIT_NO_GPU
    trt_reason = tensorrt_status(args.device)
    if trt_reason is not None:
        print(f"gpu_latency: TensorRT cannot run here: {trt_reason}", file=sys.stderr)
        if args.require_tensorrt:
            return EXIT_NO_TENSORRT
    device = torch.device("cuda", args.device)
    torch.cuda.set_device(device)
    torch.backends.cudnn.benchmark = True
    trt_version = None
    if trt_reason is None:
        import tensorrt

        trt_version = tensorrt.__version__
    with tempfile.TemporaryDirectory(prefix="gpu_latency_") as workdir:
        results = [bench_model(name, args, device, trt_reason, Path(workdir)) for name in args.models]
    report = {"gpu": torch.cuda.get_device_name(device),
              "compute_capability": ".".join(map(str, torch.cuda.get_device_capability(device))),
              "torch": torch.__version__, "cuda": torch.version.cuda, "tensorrt": trt_version,
              "tensorrt_status": trt_reason, "python": platform.python_version(), "img_size": args.img_size,
              "runs": args.runs, "warmup": args.warmup,
              "timing": "median of CUDA-synchronized wall-clock calls, network only, batch 1",
              "torch_settings": {"fp32": "fused, eager, TF32 off, cudnn.benchmark",
                                 "fp16": "fused, eager, .half(), channels_last, cudnn.benchmark"},
              "results": results}
    print(markdown_table(report))
    if args.out:
        _write_json(args.out, report)
        print(f"\nwrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
