"""int8 against float32 with ONNX Runtime on the CPU: network latency, and the accuracy the int8 graph costs.

    python benchmarks/int8.py --model runs/bccd-t-scratch/model --img-size 320 \\
        --out benchmarks/results/int8_cpu.json

(``--model`` is any hub folder or checkpoint that :func:`damo_pipeline.hub.load_detector` accepts: here the
hub folder of a DAMO-YOLO-T fine-tuned 30 epochs on bccd at 320 px; ``--skip-accuracy`` runs the latency
part alone.)

1. **Latency** (``--sizes t s`` at ``--latency-img-size 640``, batch 1 and 8, ``--threads 2``): the zoo
   models with the deterministic parity weights of ``../shared/parity/detweights.py`` (BatchNorm statistics
   set on real coco128 photos, so activations look like a trained model's), exported raw (dynamic batch)
   and quantised with :func:`damo_pipeline.export.quantize.quantize_onnx` calibrated on coco128 photos.
   Network only: ``session.run`` on a preprocessed batch of real coco128 photos. The float32 and int8
   sessions run alternately (one fp32 run, one int8 run, ...) after warm-up, so a change in the machine's
   load hits both alike; the medians of ``--runs`` runs give ``ratio_int8_over_fp32``.
2. **Accuracy**: ``--model`` exported at ``--img-size`` and quantised with calibration on the TRAIN split of
   ``--data`` (never the validation images), then both graphs scored on the validation split with the
   evaluator the trainer uses (:class:`damo_pipeline.engine.evaluator.COCOEvaluator`: the same
   preprocessing, :func:`damo_pipeline.ops.torch_nms.multiclass_nms` with the model's thresholds, pycocotools),
   and how far the int8 outputs are from the float32 ones on those images (scores, and boxes of the anchors
   that can become detections).

Writes JSON (``--out``) and prints a Markdown table.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import torch
from torch import nn

from damo_pipeline.export import export_onnx
from damo_pipeline.export.quantize import (CALIBRATION_METHODS, DEFAULT_FLOAT_NODES, DEFAULT_OP_TYPES, QUANT_FORMATS,
                                           ImageCalibrationReader, find_calibration_images, quantize_onnx)

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SHARED = REPO_ROOT.parent / "shared"


# ----------------------------------------------------------------------------------------------- sessions
def make_session(path: Path, threads: int) -> Any:
    """A CPU ONNX Runtime session with ``threads`` intra-op threads, sequential execution, all optimisations, and
    idle threads that do not spin (as the pipeline's runner): two sessions timed in turns would otherwise steal
    each other's cores with spinning threads."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def photo_batch(files: Sequence[Path], img_size: int, resize: str = "stretch") -> np.ndarray:
    """Real photos preprocessed as the pipeline does: float32 ``[N, 3, S, S]``, RGB, 0..255."""
    reader = ImageCalibrationReader(list(files), (img_size, img_size), resize, progress=False)
    return np.stack([reader.preprocess(f) for f in files])


def time_alternating(sessions: Dict[str, Any], feed: Dict[str, np.ndarray], runs: int, warmup: int) -> Dict[str, Any]:
    """Median/min ``session.run`` latency (ms) of each session, runs interleaved round-robin after warm-up."""
    times: Dict[str, List[float]] = {name: [] for name in sessions}
    for _ in range(warmup):
        for session in sessions.values():
            session.run(None, feed)
    for _ in range(runs):
        for name, session in sessions.items():
            start = time.perf_counter()
            session.run(None, feed)
            times[name].append((time.perf_counter() - start) * 1e3)
    return {name: {"median_ms": statistics.median(t), "min_ms": min(t), "runs": len(t)} for name, t in times.items()}


def output_agreement(fp32: Any, int8: Any, images: np.ndarray, batch: int = 8,
                     confident: float = 0.3) -> Dict[str, float]:
    """How far the int8 outputs are from the float32 ones on ``images`` (``[N, 3, S, S]``).

    Box differences are taken over the anchors whose best float32 score exceeds ``confident`` (the boxes
    that can become detections).
    """
    outputs = {"fp32": ([], []), "int8": ([], [])}
    for start in range(0, len(images), batch):
        feed = {"images": np.ascontiguousarray(images[start:start + batch])}
        for name, session in (("fp32", fp32), ("int8", int8)):
            scores, boxes = session.run(None, feed)
            outputs[name][0].append(scores)
            outputs[name][1].append(boxes)
    scores32, boxes32 = (np.concatenate(x) for x in outputs["fp32"])
    scores8, boxes8 = (np.concatenate(x) for x in outputs["int8"])
    score_diff = np.abs(scores8 - scores32)
    mask = scores32.max(-1) > confident
    box_diff = np.abs(boxes8 - boxes32)[mask]
    return {"score_correlation": float(np.corrcoef(scores8.ravel(), scores32.ravel())[0, 1]),
            "mean_abs_score_diff": float(score_diff.mean()), "max_abs_score_diff": float(score_diff.max()),
            "confident_anchors": int(mask.sum()),
            "median_abs_box_diff_px": float(np.median(box_diff)) if box_diff.size else None,
            "p99_abs_box_diff_px": float(np.quantile(box_diff, 0.99)) if box_diff.size else None}


def quantize_settings(args: argparse.Namespace) -> Dict[str, Any]:
    """The :func:`quantize_onnx` keyword arguments chosen on the command line."""
    return dict(method=args.method, quant_format=args.quant_format, per_channel=not args.per_tensor,
                op_types=None if args.op_types == ["all"] else args.op_types, float_tail=not args.quantize_tail,
                float_nodes=args.float_nodes,
                progress=False)


# ------------------------------------------------------------------------------------------------ latency
def deterministic_model(name: str, parity_dir: Path, photos: torch.Tensor) -> nn.Module:
    """A zoo model with the parity weights, BatchNorm statistics set on ``photos`` (eval mode)."""
    import importlib.util

    from damo_pipeline.models import build_model

    spec = importlib.util.spec_from_file_location("detweights", parity_dir / "detweights.py")
    detweights = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(detweights)
    model = build_model(name)
    model.load_state_dict(detweights.det_state_dict(model.state_dict()), strict=True)
    return detweights.calibrate_bn(model, photos).eval()


def latency_section(args: argparse.Namespace, work: Path) -> List[Dict[str, Any]]:
    """fp32 vs int8 network latency for each size and batch."""
    coco = args.shared / "data" / "coco128" / "images"
    files = sorted(coco.rglob("*.jpg"))
    feed_images = photo_batch(files[:max(args.batches)], args.latency_img_size)
    rows = []
    for size in args.sizes:
        name = f"damoyolo-{size}"
        print(f"[latency] {name}: export + calibrate on {args.latency_calibration_images} coco128 photos", flush=True)
        bn_photos = torch.from_numpy(photo_batch(files[-4:], args.latency_img_size))
        model = deterministic_model(name, args.shared / "parity", bn_photos)
        fp32 = export_onnx(model, work / f"{name}-{args.latency_img_size}.onnx", img_size=args.latency_img_size)
        start = time.perf_counter()
        int8 = quantize_onnx(fp32, work / f"{name}-{args.latency_img_size}-int8.onnx", coco,
                             num_images=args.latency_calibration_images, **quantize_settings(args))
        quantize_s = time.perf_counter() - start
        sessions = {"fp32": make_session(fp32, args.threads), "int8": make_session(int8, args.threads)}
        for batch in args.batches:
            feed = {"images": np.ascontiguousarray(feed_images[:batch])}
            timing = time_alternating(sessions, feed, args.runs, args.warmup)
            row = {"model": name, "img_size": args.latency_img_size, "batch": batch, "threads": args.threads,
                   "fp32_median_ms": timing["fp32"]["median_ms"], "int8_median_ms": timing["int8"]["median_ms"],
                   "fp32_min_ms": timing["fp32"]["min_ms"], "int8_min_ms": timing["int8"]["min_ms"],
                   "runs": args.runs, "quantize_s": quantize_s}
            row["ratio_int8_over_fp32"] = row["int8_median_ms"] / row["fp32_median_ms"]
            rows.append(row)
            print(f"[latency] {name} batch {batch}: fp32 {row['fp32_median_ms']:.1f} ms, int8 "
                  f"{row['int8_median_ms']:.1f} ms, ratio {row['ratio_int8_over_fp32']:.3f}", flush=True)
    return rows


# ----------------------------------------------------------------------------------------------- accuracy
class OrtDetector(nn.Module):
    """An ONNX Runtime session behind the ``model(images) -> (scores, boxes)`` interface the evaluator calls."""

    def __init__(self, session: Any, config: Any) -> None:
        super().__init__()
        self.session = session
        self.config = config

    def forward(self, images: torch.Tensor) -> Any:
        scores, boxes = self.session.run(None, {"images": images.detach().cpu().float().numpy()})
        return torch.from_numpy(scores), torch.from_numpy(boxes)


def accuracy_section(args: argparse.Namespace, work: Path) -> Dict[str, Any]:
    """COCO AP of the fine-tuned model on the validation split: float32 graph against int8 graph."""
    from damo_pipeline.data import EvalDataset, load_detection_dataset
    from damo_pipeline.engine.evaluator import COCOEvaluator
    from damo_pipeline.hub import load_detector

    model = load_detector(args.model)
    img_size = args.img_size or model.img_size
    train = load_detection_dataset(args.data, split="train", class_names=model.class_names)
    val = load_detection_dataset(args.data, split="val", class_names=model.class_names)
    train_files = [train.image_path(i) for i in range(len(train))]
    val_files = {val.image_path(i) for i in range(len(val))}
    calibration = find_calibration_images(train_files, args.calibration_images)
    if val_files & set(calibration):
        raise ValueError("calibration images overlap the validation split")
    fp32 = export_onnx(model, work / "accuracy-fp32.onnx", img_size=img_size)
    print(f"[accuracy] quantising with {len(calibration)} train images of {args.data}", flush=True)
    start = time.perf_counter()
    int8 = quantize_onnx(fp32, work / "accuracy-int8.onnx", calibration, num_images=None, **quantize_settings(args))
    quantize_s = time.perf_counter() - start
    result: Dict[str, Any] = {"model": str(args.model), "architecture": model.config.name, "img_size": img_size,
                              "data": str(args.data), "val_images": len(val), "calibration_images": len(calibration),
                              "calibration_split": "train", "quantize_s": quantize_s}
    evaluator = COCOEvaluator(EvalDataset(val, img_size=img_size, resize=model.config.resize), batch_size=8,
                              progress=False)
    sessions = {"fp32": make_session(fp32, args.threads), "int8": make_session(int8, args.threads)}
    for name, session in sessions.items():
        metrics = evaluator.evaluate(OrtDetector(session, model.config))
        result[name] = {"AP": metrics.ap, "AP50": metrics.ap50, "AP75": metrics.metrics.get("AP75"),
                        "per_class": metrics.per_class}
        print(f"[accuracy] {name}: AP {metrics.ap:.4f}, AP50 {metrics.ap50:.4f}", flush=True)
    result["delta_AP"] = result["int8"]["AP"] - result["fp32"]["AP"]
    result["delta_AP50"] = result["int8"]["AP50"] - result["fp32"]["AP50"]
    val_images = np.stack([evaluator.dataset[i][0].numpy() for i in range(len(evaluator.dataset))])
    result["output_agreement"] = output_agreement(sessions["fp32"], sessions["int8"], val_images)
    return result


# ----------------------------------------------------------------------------------------------- report
def markdown(results: Dict[str, Any]) -> str:
    """The latency and accuracy tables."""
    lines = []
    if results.get("latency"):
        lines += ["| model | input | batch | threads | fp32 ms (median) | int8 ms (median) | int8 / fp32 |",
                  "|---|---|---|---|---|---|---|"]
        for r in results["latency"]:
            lines.append(f"| {r['model']} | {r['img_size']} | {r['batch']} | {r['threads']} | "
                         f"{r['fp32_median_ms']:.1f} | {r['int8_median_ms']:.1f} | {r['ratio_int8_over_fp32']:.3f} |")
    acc = results.get("accuracy")
    if acc:
        lines += ["", f"Accuracy: {acc['architecture']} fine-tuned ({acc['model']}), {acc['img_size']} px, "
                      f"{acc['val_images']} validation images, int8 calibrated on {acc['calibration_images']} "
                      f"train images", "",
                  "| graph | AP | AP50 | AP75 |", "|---|---|---|---|"]
        for name in ("fp32", "int8"):
            lines.append(f"| {name} | {acc[name]['AP']:.4f} | {acc[name]['AP50']:.4f} | {acc[name]['AP75']:.4f} |")
        lines.append(f"| int8 - fp32 | {acc['delta_AP']:+.4f} | {acc['delta_AP50']:+.4f} | "
                     f"{acc['int8']['AP75'] - acc['fp32']['AP75']:+.4f} |")
        agree = acc["output_agreement"]
        lines += ["", f"int8 against fp32 outputs on the validation images: score correlation "
                      f"{agree['score_correlation']:.4f}, mean |score diff| {agree['mean_abs_score_diff']:.4f}, "
                      f"max {agree['max_abs_score_diff']:.4f}; box diff on the {agree['confident_anchors']} anchors "
                      f"scoring > 0.3: median {agree['median_abs_box_diff_px']:.2f} px, "
                      f"99th percentile {agree['p99_abs_box_diff_px']:.2f} px"]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None,
                        help="fine-tuned model for the accuracy part (hub folder or checkpoint)")
    parser.add_argument("--img-size", type=int, default=None, help="accuracy input size (default: the model's)")
    parser.add_argument("--data", type=Path, default=DEFAULT_SHARED / "data" / "bccd",
                        help="dataset the model was tuned on (calibration: its train split; AP: its val split)")
    parser.add_argument("--shared", type=Path, default=DEFAULT_SHARED, help="../shared (parity weights, coco128)")
    parser.add_argument("--sizes", nargs="+", default=["t", "s"], help="zoo sizes for the latency part")
    parser.add_argument("--latency-img-size", type=int, default=640)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--calibration-images", type=int, default=100, help="train images for the accuracy part")
    parser.add_argument("--latency-calibration-images", type=int, default=32)
    parser.add_argument("--method", choices=CALIBRATION_METHODS, default="minmax")
    parser.add_argument("--quant-format", choices=QUANT_FORMATS, default="qdq")
    parser.add_argument("--per-tensor", action="store_true", help="one weight scale per tensor, not per channel")
    parser.add_argument("--op-types", nargs="+", default=list(DEFAULT_OP_TYPES), help="op types to quantise ('all')")
    parser.add_argument("--quantize-tail", action="store_true", help="quantise the nodes after the last convs too")
    parser.add_argument("--float-nodes", nargs="*", default=list(DEFAULT_FLOAT_NODES), help="node patterns kept float")
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--skip-accuracy", action="store_true")
    parser.add_argument("--workdir", type=Path, default=None, help="keep the graphs here (default: a temp folder)")
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON")
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    if not args.skip_accuracy and args.model is None:
        print("--model is needed for the accuracy part (or pass --skip-accuracy)", file=sys.stderr)
        return 2
    import onnxruntime

    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    results: Dict[str, Any] = {
        "machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                    "cpu_count": os.cpu_count(), "threads": args.threads, "onnxruntime": onnxruntime.__version__,
                    "torch": torch.__version__},
        "settings": {k: v for k, v in quantize_settings(args).items() if k != "progress"},
    }
    with tempfile.TemporaryDirectory(prefix="int8-bench-") as tmp:
        work = args.workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        if not args.skip_latency:
            results["latency"] = latency_section(args, work)
        if not args.skip_accuracy:
            results["accuracy"] = accuracy_section(args, work)
    results["wall_s"] = time.perf_counter() - start
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        tmp_out = args.out.with_name(f".{args.out.name}.tmp")
        tmp_out.write_text(json.dumps(results, indent=2) + "\n")
        os.replace(tmp_out, args.out)
    print(markdown(results))
    print(f"\n(total {results['wall_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
