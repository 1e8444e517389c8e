"""``damo-export``: export a model to ONNX from the command line."""
from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import List, Optional

from .onnx_export import DEFAULT_OPSET, export_onnx, read_metadata


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="damo-export", description="Export a DAMO-YOLO model to ONNX (fused deploy form).")
    parser.add_argument("model", help="zoo id (with --checkpoint), checkpoint file, hub folder or hub id")
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
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    batch = args.batch if args.batch == "dynamic" else int(args.batch)
    try:
        path = export_onnx(args.model, args.out, img_size=args.img_size, batch=batch, nms=args.nms, half=args.half,
                           opset=args.opset, checkpoint=args.checkpoint, score_threshold=args.score_threshold,
                           iou_threshold=args.iou_threshold, max_detections=args.max_detections)
    except (ValueError, TypeError, OSError) as e:
        print(f"damo-export: {e}", file=sys.stderr)
        return 2
    meta = read_metadata(path)
    print(f"wrote {path}")
    print(json.dumps({k: meta[k] for k in ("architecture", "img_size", "nms", "outputs")}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
