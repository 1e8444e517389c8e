"""``damo-export``: export a model to ONNX from the command line, optionally quantised to int8.

    damo-export damoyolo-t --checkpoint damoyolo_t.pth --out t.onnx
    damo-export runs/bccd/model --out t-int8.onnx --int8 --calibration data/train/images --calibration-images 100
    damo-export t.onnx --out t-int8.onnx --int8 --calibration 'photos/*.jpg'     # quantise an exported graph
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
from pathlib import Path
from typing import List, Optional

from .onnx_export import DEFAULT_OPSET, export_onnx, read_metadata
from .quantize import CALIBRATION_METHODS, DEFAULT_NUM_IMAGES


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="damo-export", description="Export a DAMO-YOLO model to ONNX (fused deploy form).")
    parser.add_argument("model", help="zoo id (with --checkpoint), checkpoint file, hub folder or hub id; with --int8 "
                                      "also a float32 .onnx exported by damo-export")
    parser.add_argument("--checkpoint", help="weights for a zoo id")
    parser.add_argument("--out", required=True, help="output .onnx path")
    parser.add_argument("--img-size", type=int, default=None, help="square input size (default: the model's)")
    parser.add_argument("--batch", default="dynamic", help="'dynamic' or a fixed batch size (default: dynamic)")
    parser.add_argument("--nms", action="store_true", help="end the graph in ONNX NonMaxSuppression (fixed layout)")
    parser.add_argument("--half", action="store_true", help="float16 weights and input (GPU runtimes)")
    parser.add_argument("--opset", type=int, default=DEFAULT_OPSET)
    parser.add_argument("--score-threshold", type=float, default=None)
    parser.add_argument("--iou-threshold", type=float, default=None)
    parser.add_argument("--max-detections", type=int, default=100)
    int8 = parser.add_argument_group("int8 (ONNX Runtime static quantisation, CPU)")
    int8.add_argument("--int8", action="store_true",
                      help="write an int8 graph (uint8 activations, int8 per-channel weights) calibrated on real "
                           "images")
    int8.add_argument("--calibration", metavar="DIR_OR_GLOB", nargs="+",
                      help="calibration photos: folder(s), glob pattern(s) or files, like the deployment's images "
                           "(never the validation set you will score on)")
    int8.add_argument("--calibration-images", type=int, default=DEFAULT_NUM_IMAGES, metavar="N",
                      help=f"images to calibrate on, evenly spread over the sorted files "
                           f"(default {DEFAULT_NUM_IMAGES})")
    int8.add_argument("--calibration-method", choices=CALIBRATION_METHODS, default="minmax",
                      help="how activation ranges are chosen (default minmax)")
    return parser


def _check_int8_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if not args.int8:
        if args.calibration:
            parser.error("--calibration is only used with --int8")
        return
    if not args.calibration:
        parser.error("--int8 needs --calibration DIR_OR_GLOB: real photos to measure activation ranges on")
    if args.nms:
        parser.error("--int8 quantises the raw graph: drop --nms (run NMS on the int8 graph's float outputs)")
    if args.half:
        parser.error("--int8 starts from the float32 graph: drop --half")
    if args.calibration_images < 1:
        parser.error(f"--calibration-images must be >= 1, got {args.calibration_images}")


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _check_int8_arguments(parser, args)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    batch = args.batch if args.batch == "dynamic" else int(args.batch)
    try:
        if args.int8:
            from .quantize import quantize_onnx

            with tempfile.TemporaryDirectory(prefix="damo-export-") as work:
                source = Path(args.model)
                if not (source.suffix.lower() == ".onnx" and source.is_file()):
                    source = export_onnx(args.model, Path(work) / "fp32.onnx", img_size=args.img_size, batch=batch,
                                         opset=args.opset, checkpoint=args.checkpoint)
                path = quantize_onnx(source, args.out, args.calibration, num_images=args.calibration_images,
                                     method=args.calibration_method)
        else:
            path = export_onnx(args.model, args.out, img_size=args.img_size, batch=batch, nms=args.nms, half=args.half,
                               opset=args.opset, checkpoint=args.checkpoint, score_threshold=args.score_threshold,
                               iou_threshold=args.iou_threshold, max_detections=args.max_detections)
    except (ValueError, TypeError, OSError, ImportError) as e:
        print(f"damo-export: {e}", file=sys.stderr)
        return 2
    meta = read_metadata(path)
    print(f"wrote {path}")
    keys = ("architecture", "img_size", "nms", "outputs", "quantization")
    print(json.dumps({k: meta[k] for k in keys if k in meta}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
