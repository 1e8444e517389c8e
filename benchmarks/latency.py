"""Inference latency on this machine: our torch and ONNX Runtime engines against ModelScope's DAMO-YOLO, the
official training-form network and the machine's own float32 limit. Writes JSON and a Markdown table.

    python benchmarks/latency.py                       # T and S, batch 1 and 8, 2 threads, 20 runs
    python benchmarks/latency.py --sizes t --runs 30 --out benchmarks/results/latency.json
    bash benchmarks/setup_modelscope_venv.sh           # once, for the ModelScope column (a second venv)

Every side runs the same weights (the parity weights of ``../shared/parity`` with BatchNorm statistics
calibrated on real coco128 photos, written as an official-format checkpoint) on the same real coco128 photos,
each in its own fresh process, so one engine's thread pools and memory never disturb another's, and the peak
RSS of each process is its own:

* **whole call** (ms per image, file path in, detections out: decode, resize, network, NMS, result):
  ``pipeline(...)(path)`` with the torch engine and with the ONNX Runtime engine on a ``.onnx`` (a process that
  never imports torch), against ModelScope's ``pipeline(Tasks.image_object_detection, model=folder)``
  (``benchmarks/modelscope_baseline.py``, run in ``benchmarks/.venv-modelscope`` because ModelScope's DAMO-YOLO
  needs torchvision, which does not import beside this project's torch build);
* **network only** (ms per image, an already preprocessed float tensor in, scores and boxes out): the training-form
  eager network (what the official code runs at inference), our fused network, the ONNX Runtime session;
* **machine limit**: achieved GFLOP/s of the network (``models.profile`` GFLOPs / latency) as a fraction of the
  GFLOP/s of a 2048^3 float32 matmul measured in the same process with the same threads;
* **Ultralytics** YOLO11 of similar COCO AP (``yolo11n`` for T, ``yolo11s`` for S) through its own ``predict()``
  (``benchmarks/ultralytics_baseline.py``), when a Python with ``ultralytics`` is there (never a dependency).

Latencies are medians of ``--runs`` timed runs after ``--warmup`` runs; batch 8 reports per-image time
(per-call time / 8). Ratios compare numbers of the same run. Run on an otherwise idle machine.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Sequence

from timing import batch_of, peak_rss_mb, summarize, timed_calls  # benchmarks/timing.py, beside this script

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
MODELSCOPE_PYTHON = REPO / "benchmarks" / ".venv-modelscope" / "bin" / "python"
ZOO = {"t": "damoyolo-t", "s": "damoyolo-s"}
IMG_SIZE = 640
MATMUL_N = 2048


# -- timing helpers ------------------------------------------------------------------------------------------------
def measure(fn: Callable[[int], Any], runs: int, warmup: int, batch: int = 1) -> Dict[str, float]:
    """ms statistics of ``fn(i)`` per call divided by ``batch`` (per image), same schedule as the baselines."""
    return summarize(timed_calls(fn, warmup, runs), batch)


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def worker_ours(args: argparse.Namespace) -> Dict[str, Any]:
    """Whole call with our pipeline; engine torch (from the checkpoint) or onnxruntime (from the .onnx)."""
    from damo_pipeline import pipeline

    images = args.images
    if args.engine == "torch":
        import torch

        torch.set_num_threads(args.threads)
        detector = pipeline("image-object-detection", model=ZOO[args.size], checkpoint=args.weights, device="cpu",
                            batch_size=args.batch)
    else:
        graph = args.onnx_int8 if args.engine == "onnxruntime-int8" else args.onnx
        detector = pipeline("image-object-detection", model=graph, threads=args.threads, batch_size=args.batch)
    run = (lambda i: detector(images[i % len(images)])) if args.batch == 1 else (
        lambda i: detector(batch_of(images, i, args.batch)))
    seconds = timed_calls(run, args.warmup, args.runs)
    first = detector(images[0])
    return {"per_call_ms": summarize(seconds), "per_image_ms": summarize(seconds, args.batch),
            "torch_imported": "torch" in sys.modules,
            "peak_rss_mb": peak_rss_mb(), "detections_first_image": first.num_detections}


def ort_matmul_gflops(threads: int, runs: int) -> float:
    """GFLOP/s of a 2048^3 float32 MatMul in ONNX Runtime (MLAS: its AVX-512 kernels on this CPU)."""
    import numpy as np
    from onnx import TensorProto, helper

    from damo_pipeline.runtime import import_onnxruntime

    ort = import_onnxruntime()
    n = MATMUL_N
    graph = helper.make_graph([helper.make_node("MatMul", ["A", "B"], ["C"])], "matmul",
                              [helper.make_tensor_value_info(x, TensorProto.FLOAT, [n, n]) for x in "AB"],
                              [helper.make_tensor_value_info("C", TensorProto.FLOAT, [n, n])])
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
                                   .SerializeToString(), options, providers=["CPUExecutionProvider"])
    a, b = (np.random.default_rng(i).standard_normal((n, n), dtype=np.float32) for i in (0, 1))
    stats = measure(lambda i: session.run(None, {"A": a, "B": b}), max(runs, 20), 3)
    return 2 * n ** 3 / (stats["median"] / 1000.0) / 1e9


def worker_network(args: argparse.Namespace) -> Dict[str, Any]:
    """Network only: training-form eager, fused torch (NCHW and channels-last), ONNX Runtime fp32 and int8;
    the machine limit as the faster of torch's and ONNX Runtime's float32 2048^3 matmul."""
    import numpy as np
    import torch

    from damo_pipeline.models import build_model, load_checkpoint, profile
    from damo_pipeline.ops.resize import resize_image
    from damo_pipeline.pipelines.inputs import load_image
    from damo_pipeline.runtime import OnnxRuntimeRunner

    torch.set_num_threads(args.threads)
    canvases = [resize_image(load_image(p).rgb, (IMG_SIZE, IMG_SIZE))[0] for p in batch_of(args.images, 0, args.batch)]
    pixels = np.ascontiguousarray(np.stack(canvases).transpose(0, 3, 1, 2), dtype=np.float32)
    tensor = torch.from_numpy(pixels)
    tensor_cl = tensor.contiguous(memory_format=torch.channels_last)
    training_form = build_model(ZOO[args.size])
    load_checkpoint(training_form, args.weights)
    training_form.eval()
    gflops = profile(training_form, img_size=IMG_SIZE).gflops
    fused = build_model(ZOO[args.size])
    load_checkpoint(fused, args.weights)
    fused.eval().fuse()
    fused_cl = build_model(ZOO[args.size])
    load_checkpoint(fused_cl, args.weights)
    fused_cl.eval().fuse().to(memory_format=torch.channels_last)
    results: Dict[str, Any] = {"gflops_per_image": gflops}
    with torch.inference_mode():
        results["training_form_eager"] = measure(lambda i: training_form(tensor), args.runs, args.warmup, args.batch)
        results["fused_eager_nchw"] = measure(lambda i: fused(tensor), args.runs, args.warmup, args.batch)
        results["fused_eager"] = measure(lambda i: fused_cl(tensor_cl), args.runs, args.warmup, args.batch)
        a = torch.randn(MATMUL_N, MATMUL_N)
        b = torch.randn(MATMUL_N, MATMUL_N)
        matmul = measure(lambda i: torch.mm(a, b), max(args.runs, 20), 3)
    for name, graph in (("onnxruntime", args.onnx), ("onnxruntime_int8", args.onnx_int8)):
        runner = OnnxRuntimeRunner(graph, threads=args.threads)
        results[name] = measure(lambda i: runner(pixels), args.runs, args.warmup, args.batch)
    results["matmul_gflops_per_s"] = {"torch_mm": 2 * MATMUL_N ** 3 / (matmul["median"] / 1000.0) / 1e9,
                                      "onnxruntime_matmul": ort_matmul_gflops(args.threads, args.runs)}
    limit = max(results["matmul_gflops_per_s"].values())
    results["machine_limit_gflops_per_s"] = limit
    for name in ("training_form_eager", "fused_eager_nchw", "fused_eager", "onnxruntime"):
        results[name]["gflops_per_s"] = gflops / (results[name]["median"] / 1000.0)
        results[name]["fraction_of_matmul"] = results[name]["gflops_per_s"] / limit
    return results


WORKERS = {"ours": worker_ours, "network": worker_network}
BASELINES = {"modelscope": "modelscope_baseline.py", "ultralytics": "ultralytics_baseline.py"}


# -- the driver ----------------------------------------------------------------------------------------------------
def run_worker(kind: str, size: str, batch: int, args: argparse.Namespace, weights: Path, onnx: Path,
               onnx_int8: Path, engine: str = "torch", python: Optional[Path] = None) -> Dict[str, Any]:
    """Run one measurement in a fresh process; returns its JSON, or {"error": ...} when it fails."""
    out = Path(tempfile.mkstemp(suffix=".json")[1])
    common = ["--size", size, "--batch", str(batch), "--threads", str(args.threads), "--runs", str(args.runs),
              "--warmup", str(args.warmup), "--out", str(out)]
    if kind == "modelscope":  # our weights, in ModelScope's own pipeline
        command = [str(python), str(REPO / "benchmarks" / BASELINES[kind]), *common, "--weights", str(weights),
                   "--images", *args.images]
    elif kind == "ultralytics":  # its own peer model
        command = [str(python), str(REPO / "benchmarks" / BASELINES[kind]), *common, "--images", *args.images]
    else:
        command = [sys.executable, __file__, "--worker", kind, "--engine", engine, "--onnx", str(onnx),
                   "--onnx-int8", str(onnx_int8), *common, "--weights", str(weights), "--images", *args.images]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO)
    try:
        if done.returncode != 0:
            return {"error": (done.stderr or done.stdout).strip().splitlines()[-1:] or ["failed"]}
        return json.loads(out.read_text())
    finally:
        out.unlink(missing_ok=True)


def prepare_weights(size: str, folder: Path, coco_images: Sequence[str], calibration: Sequence[str]
                    ) -> Dict[str, Path]:
    """Official-format checkpoint of the calibrated parity weights, its raw ONNX graph (batch dynamic) and the
    int8 graph calibrated on ``calibration`` photos (not the timed ones)."""
    import torch

    from damo_pipeline.export import export_onnx
    from damo_pipeline.models import build_model

    sys.path.insert(0, str(SHARED / "parity"))
    import detweights  # the helper that makes the parity weights (../shared/parity)

    torch.manual_seed(0)
    model = build_model(ZOO[size])
    model.load_state_dict(detweights.det_state_dict(model.state_dict()), strict=True)
    bn_batch = torch.cat([detweights.official_preprocess(p, 320) for p in coco_images[:4]])
    detweights.calibrate_bn(model, bn_batch)
    model.eval()
    weights = folder / f"{ZOO[size]}.pth"
    torch.save({"model": model.state_dict()}, weights)
    onnx = export_onnx(model, folder / f"{ZOO[size]}.onnx", img_size=IMG_SIZE)
    from damo_pipeline.export import quantize_onnx

    onnx_int8 = quantize_onnx(onnx, folder / f"{ZOO[size]}-int8.onnx", calibration_images=list(calibration),
                              num_images=None, progress=False)
    return {"weights": weights, "onnx": onnx, "onnx_int8": onnx_int8}


def ratio(a: Optional[float], b: Optional[float]) -> Optional[float]:
    return None if a is None or b is None or b == 0 else a / b


def median_of(entry: Dict[str, Any], key: str = "per_image_ms") -> Optional[float]:
    return entry.get(key, {}).get("median") if isinstance(entry, dict) else None


def modelscope_network_640(entry: Dict[str, Any]) -> Optional[float]:
    """ModelScope's training-form network on a [batch, 3, 640, 640] tensor, ms per image (its torch build)."""
    network = entry.get("modelscope", {}).get("network_ms") or {}
    return (network.get("fixed_640") or {}).get("per_image_ms", {}).get("median")


def check_same_weights(size: str, weights: Path, modelscope: Dict[str, Any], images: Sequence[str]) -> Dict[str, Any]:
    """Our torch pipeline at ModelScope's input (original size padded to /32, no clipping) on the photos whose
    detections ModelScope reported: every ModelScope detection must have a match in ours (same label, box within
    0.05 px, score within 1e-4), proof that both sides ran the same network on the same weights."""
    import numpy as np

    from damo_pipeline import pipeline

    detector = pipeline("image-object-detection", model=ZOO[size], checkpoint=str(weights), device="cpu",
                        resize="letterbox", clip_boxes=False)
    by_name = {Path(p).name: p for p in images}
    checked, unmatched = 0, 0
    for name, theirs in (modelscope.get("detections") or {}).items():
        size_hw = theirs.get("input_size_hw")
        if name not in by_name or size_hw is None:
            continue
        ours = detector(by_name[name], img_size=tuple(size_hw))
        our_boxes, our_scores, our_labels = ours["boxes"], np.asarray(ours["scores"]), ours["labels"]
        for box, score, label in zip(theirs["boxes"], theirs["scores"], theirs["labels"]):
            close = (np.abs(our_boxes - np.asarray(box)).max(axis=1) <= 0.05) & (np.abs(our_scores - score) <= 1e-4)
            unmatched += int(not any(c and our_labels[i] == label for i, c in enumerate(close)))
            checked += 1
    return {"detections_checked": checked, "unmatched": unmatched, "same": checked > 0 and unmatched == 0}


def summarise(size: str, batch: int, entry: Dict[str, Any]) -> Dict[str, Any]:
    torch_call = median_of(entry["ours_torch"])
    ort_call = median_of(entry["ours_onnxruntime"])
    ms_call = median_of(entry.get("modelscope", {}))
    net = entry["network"]
    train_net = net.get("training_form_eager", {}).get("median")
    return {
        "ours_torch_over_modelscope": ratio(torch_call, ms_call),
        "ours_onnxruntime_over_modelscope": ratio(ort_call, ms_call),
        "ours_onnxruntime_int8_over_modelscope": ratio(median_of(entry["ours_onnxruntime_int8"]), ms_call),
        "fused_over_training_form_network": ratio(net.get("fused_eager", {}).get("median"), train_net),
        "onnxruntime_over_training_form_network": ratio(net.get("onnxruntime", {}).get("median"), train_net),
        "onnxruntime_int8_over_training_form_network": ratio(net.get("onnxruntime_int8", {}).get("median"),
                                                             train_net),
        "fused_over_modelscope_network_640": ratio(net.get("fused_eager", {}).get("median"),
                                                   modelscope_network_640(entry)),
        "onnxruntime_over_modelscope_network_640": ratio(net.get("onnxruntime", {}).get("median"),
                                                         modelscope_network_640(entry)),
        "onnxruntime_fraction_of_matmul": net.get("onnxruntime", {}).get("fraction_of_matmul"),
        "ours_torch_over_ultralytics": ratio(torch_call, median_of(entry.get("ultralytics", {}))),
        "ours_onnxruntime_over_ultralytics": ratio(ort_call, median_of(entry.get("ultralytics", {}))),
        "ours_onnxruntime_int8_over_ultralytics": ratio(median_of(entry["ours_onnxruntime_int8"]),
                                                        median_of(entry.get("ultralytics", {}))),
    }


def fmt(value: Optional[float], digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def markdown(report: Dict[str, Any]) -> str:
    def net_ms(entry: Dict[str, Any], key: str) -> Optional[float]:
        return entry["network"].get(key, {}).get("median")

    lines = [f"Machine: {report['machine']['cpu']}, {report['threads']} threads; median of {report['runs']} runs "
             f"after {report['warmup']} warm-up; ms per image; coco128 photos.", "",
             "Whole call (file path in, detections out; ours at 640x640, ModelScope at the photo's own size padded "
             "to /32):", "",
             "| model | batch | ours torch | ours ORT | ours ORT int8 | ModelScope | torch / MS | ORT / MS | "
             "ORT int8 / MS |", "|---|---|---|---|---|---|---|---|---|"]
    for entry in report["results"].values():
        s = entry["summary"]
        lines.append(f"| {entry['model']} | {entry['batch']} | {fmt(median_of(entry['ours_torch']))} | "
                     f"{fmt(median_of(entry['ours_onnxruntime']))} | {fmt(median_of(entry['ours_onnxruntime_int8']))} | "
                     f"{fmt(median_of(entry.get('modelscope', {})))} | {fmt(s['ours_torch_over_modelscope'], 2)} | "
                     f"{fmt(s['ours_onnxruntime_over_modelscope'], 2)} | "
                     f"{fmt(s['ours_onnxruntime_int8_over_modelscope'], 2)} |")
    lines += ["", "Network only at 640x640 (ms per image):", "",
              "| model | batch | training form (official, ours) | training form (ModelScope, its torch) | "
              "fused NCHW | fused channels-last (torch engine) | ORT | ORT int8 | fused CL / train | ORT / train | "
              "ORT int8 / train |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for entry in report["results"].values():
        s = entry["summary"]
        lines.append(f"| {entry['model']} | {entry['batch']} | {fmt(net_ms(entry, 'training_form_eager'))} | "
                     f"{fmt(modelscope_network_640(entry))} | {fmt(net_ms(entry, 'fused_eager_nchw'))} | "
                     f"{fmt(net_ms(entry, 'fused_eager'))} | {fmt(net_ms(entry, 'onnxruntime'))} | "
                     f"{fmt(net_ms(entry, 'onnxruntime_int8'))} | {fmt(s['fused_over_training_form_network'], 2)} | "
                     f"{fmt(s['onnxruntime_over_training_form_network'], 2)} | "
                     f"{fmt(s['onnxruntime_int8_over_training_form_network'], 2)} |")
    lines += ["", "Machine limit: achieved network GFLOP/s (models.profile GFLOPs / latency) against the faster float32 "
              "2048^3 matmul of torch.mm and ONNX Runtime's MatMul, same process and threads:", "",
              "| model | batch | GFLOPs | fused CL GFLOP/s | ORT GFLOP/s | torch.mm GFLOP/s | ORT MatMul GFLOP/s | "
              "fused CL fraction | ORT fraction |", "|---|---|---|---|---|---|---|---|---|"]
    for entry in report["results"].values():
        net = entry["network"]
        matmul = net.get("matmul_gflops_per_s", {})
        lines.append(f"| {entry['model']} | {entry['batch']} | {fmt(net.get('gflops_per_image'), 2)} | "
                     f"{fmt(net.get('fused_eager', {}).get('gflops_per_s'))} | "
                     f"{fmt(net.get('onnxruntime', {}).get('gflops_per_s'))} | {fmt(matmul.get('torch_mm'))} | "
                     f"{fmt(matmul.get('onnxruntime_matmul'))} | "
                     f"{fmt(net.get('fused_eager', {}).get('fraction_of_matmul'), 2)} | "
                     f"{fmt(net.get('onnxruntime', {}).get('fraction_of_matmul'), 2)} |")
    if any("ultralytics" in entry for entry in report["results"].values()):
        lines += ["", "Against Ultralytics YOLO11 of similar COCO AP, whole call through its own predict() (ms per "
                  "image):", "", "| model | batch | peer | ours torch | ours ORT | ours ORT int8 | Ultralytics | "
                  "torch / U | ORT / U | ORT int8 / U |", "|---|---|---|---|---|---|---|---|---|---|"]
        for entry in report["results"].values():
            peer = entry.get("ultralytics", {})
            s = entry["summary"]
            lines.append(f"| {entry['model']} | {entry['batch']} | {peer.get('model', 'n/a')} (AP "
                         f"{peer.get('coco_val_ap', 'n/a')}) | {fmt(median_of(entry['ours_torch']))} | "
                         f"{fmt(median_of(entry['ours_onnxruntime']))} | "
                         f"{fmt(median_of(entry['ours_onnxruntime_int8']))} | {fmt(median_of(peer))} | "
                         f"{fmt(s['ours_torch_over_ultralytics'], 2)} | {fmt(s['ours_onnxruntime_over_ultralytics'], 2)} | "
                         f"{fmt(s['ours_onnxruntime_int8_over_ultralytics'], 2)} |")
    lines += ["", "Peak RSS of the whole-call process at batch 1 (MB) and whether it imported torch:", "",
              "| model | ours torch | ours ORT (torch imported?) | ours ORT int8 | ModelScope |", "|---|---|---|---|---|"]
    for entry in report["results"].values():
        if entry["batch"] != 1:
            continue
        ort, int8 = entry["ours_onnxruntime"], entry["ours_onnxruntime_int8"]
        lines.append(f"| {entry['model']} | {fmt(entry['ours_torch'].get('peak_rss_mb'), 0)} | "
                     f"{fmt(ort.get('peak_rss_mb'), 0)} ({'yes' if ort.get('torch_imported') else 'no'}) | "
                     f"{fmt(int8.get('peak_rss_mb'), 0)} | {fmt(entry.get('modelscope', {}).get('peak_rss_mb'), 0)} |")
    checks = [f"{entry['model']}: {entry['same_weights_check']}" for entry in report["results"].values()
              if "same_weights_check" in entry]
    notes = report.get("notes", []) + ([f"Same weights on both sides (ModelScope's detections found in ours): "
                                        f"{'; '.join(checks)}"] if checks else [])
    if notes:
        lines += [""] + [f"- {note}" for note in notes]
    return "\n".join(lines) + "\n"


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", choices=sorted(ZOO), default=["t", "s"])
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 8])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--num-images", type=int, default=16, help="coco128 photos cycled through (default 16)")
    parser.add_argument("--modelscope-python", type=Path, default=MODELSCOPE_PYTHON,
                        help="python of the ModelScope venv (benchmarks/setup_modelscope_venv.sh makes it)")
    parser.add_argument("--ultralytics-python", type=Path, default=MODELSCOPE_PYTHON,
                        help="a python with ultralytics installed (setup_modelscope_venv.sh --with-ultralytics)")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "latency.json")
    # worker mode (internal)
    parser.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    parser.add_argument("--engine", default="torch", help=argparse.SUPPRESS)
    parser.add_argument("--size", help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--weights", help=argparse.SUPPRESS)
    parser.add_argument("--onnx", help=argparse.SUPPRESS)
    parser.add_argument("--onnx-int8", help=argparse.SUPPRESS)
    parser.add_argument("--images", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        result = WORKERS[args.worker](args)
        Path(args.out).write_text(json.dumps(result))
        return 0

    coco = SHARED / "data" / "coco128" / "images"
    if not coco.is_dir():
        print(f"error: {coco} not found: the benchmark reads ../shared/data/coco128 in place.", file=sys.stderr)
        return 2
    photos = [str(p) for p in sorted(coco.glob("*.jpg"))]
    args.images = photos[:args.num_images]
    calibration = photos[args.num_images:args.num_images + 32]  # int8 calibration never sees the timed photos
    modelscope = args.modelscope_python if args.modelscope_python.is_file() else None
    ultralytics = args.ultralytics_python if args.ultralytics_python.is_file() and subprocess.run(
        [str(args.ultralytics_python), "-c", "import ultralytics"], capture_output=True).returncode == 0 else None
    notes = []
    if modelscope is None:
        notes.append(f"ModelScope column skipped: {args.modelscope_python} missing (run "
                     f"benchmarks/setup_modelscope_venv.sh).")
    if ultralytics is None:
        notes.append(f"Ultralytics column skipped: {args.ultralytics_python} cannot import ultralytics (optional; "
                     f"bash benchmarks/setup_modelscope_venv.sh --with-ultralytics).")
    report: Dict[str, Any] = {
        "benchmark": "latency", "threads": args.threads, "runs": args.runs, "warmup": args.warmup,
        "images": [Path(p).name for p in args.images], "img_size": IMG_SIZE,
        "machine": {"cpu": cpu_name(), "cores": os.cpu_count(),
                    "load_average_start": os.getloadavg()},
        "results": {}, "notes": notes,
    }
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            files = prepare_weights(size, Path(tmp), args.images, calibration)
            for batch in args.batches:
                print(f"{ZOO[size]} batch {batch} ...", file=sys.stderr, flush=True)
                entry: Dict[str, Any] = {"model": ZOO[size], "batch": batch}
                common = dict(args=args, weights=files["weights"], onnx=files["onnx"], onnx_int8=files["onnx_int8"])
                entry["ours_torch"] = run_worker("ours", size, batch, engine="torch", **common)
                entry["ours_onnxruntime"] = run_worker("ours", size, batch, engine="onnxruntime", **common)
                entry["ours_onnxruntime_int8"] = run_worker("ours", size, batch, engine="onnxruntime-int8", **common)
                if modelscope is not None:
                    entry["modelscope"] = run_worker("modelscope", size, batch, python=modelscope, **common)
                    if batch == 1 and "error" not in entry["modelscope"]:
                        entry["same_weights_check"] = check_same_weights(size, files["weights"], entry["modelscope"],
                                                                         args.images)
                if ultralytics is not None:
                    entry["ultralytics"] = run_worker("ultralytics", size, batch, python=ultralytics, **common)
                entry["network"] = run_worker("network", size, batch, **common)
                entry["summary"] = summarise(size, batch, entry)
                report["results"][f"{size}-b{batch}"] = entry
    report["machine"]["load_average_end"] = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    table = markdown(report)
    args.out.with_suffix(".md").write_text(table)
    print(table)
    print(f"wrote {args.out} and {args.out.with_suffix('.md')}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
