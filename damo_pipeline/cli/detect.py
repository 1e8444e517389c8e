"""``damo-detect``: run a DAMO-YOLO detector on images, folders, URLs, videos or a camera.

Usage::

    damo-detect SOURCE [SOURCE ...] [--model damoyolo-s] [--checkpoint FILE] [--score-threshold 0.3]
                [--save DIR] [--json] [--device cpu] [--img-size 640] [--classes person,car] ...

SOURCE is an image file, an http(s) image URL, a folder (its images, sorted by name), a video file or
``rtsp://`` stream, or a camera index (``0``). Per image it prints ``source: N detections`` and one line per
detection (``label score x1 y1 x2 y2``, original-image pixels); with ``--json`` it prints one JSON object per image
instead (JSON Lines, the ``DetectionResult.to_json()`` form). ``--save DIR`` writes annotated copies (an annotated
``.mp4`` for videos and cameras) and, with ``--json``, a ``.json`` per image (``.jsonl`` per video).

Exit codes: 0 success; 2 unusable input, options or weights (one line on stderr says why); 130 interrupted.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, TextIO

from ..ops.resize import RESIZE_MODES

logger = logging.getLogger(__name__)

PROG = "damo-detect"
DEFAULT_MODEL = "damoyolo-s"
DEFAULT_SCORE_THRESHOLD = 0.3
_IMAGE_OUT_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


def build_parser() -> argparse.ArgumentParser:
    """The ``damo-detect`` argument parser."""
    parser = argparse.ArgumentParser(
        prog=PROG, description="Detect objects with a DAMO-YOLO model in images, folders, URLs, videos or a camera.")
    parser.add_argument("sources", nargs="+", metavar="SOURCE",
                        help="image file, http(s) image URL, image folder, video file or stream URL, camera index")
    parser.add_argument("--model", default=DEFAULT_MODEL,
                        help=f"zoo id, hub id, model folder or checkpoint file (default: {DEFAULT_MODEL})")
    parser.add_argument("--checkpoint", help="weights file for a zoo id given as --model")
    parser.add_argument("--score-threshold", type=float, default=DEFAULT_SCORE_THRESHOLD,
                        help=f"minimum class score (default: {DEFAULT_SCORE_THRESHOLD}; the library default is the "
                             f"model's official 0.05, which lists many low-confidence boxes)")
    parser.add_argument("--iou-threshold", type=float, help="NMS IoU threshold (default: the model's, 0.7 / 0.65 Nano)")
    parser.add_argument("--max-detections", type=int, help="detections kept per image (default: 500)")
    parser.add_argument("--classes", help="comma-separated class names or ids to keep (default: all)")
    parser.add_argument("--img-size", type=int, help="network input size (default: the model's native size)")
    parser.add_argument("--resize", choices=RESIZE_MODES, help="resize mode (default: stretch, as upstream)")
    parser.add_argument("--device", help="cpu, cuda, cuda:1 (default: cuda when available)")
    parser.add_argument("--half", action="store_true", help="float16 inference (CUDA only)")
    parser.add_argument("--engine", choices=("torch", "onnxruntime", "tensorrt"),
                        help="inference engine (default: onnxruntime for a .onnx --model, else torch); "
                             "onnxruntime exports the model once into the cache")
    parser.add_argument("--threads", type=int, help="ONNX Runtime threads (default: the cores this process may use)")
    parser.add_argument("--int8", action="store_true",
                        help="ONNX Runtime int8 graph quantised on --calibration photos (once, then cached)")
    parser.add_argument("--calibration", metavar="DIR_OR_GLOB", help="photos like yours for --int8 (~100 images)")
    parser.add_argument("--batch-size", type=int, default=1, help="images per forward pass (default: 1)")
    parser.add_argument("--save", metavar="DIR", help="write annotated images/videos (and JSON with --json) here")
    parser.add_argument("--json", action="store_true", help="print one JSON object per image instead of text")
    parser.add_argument("--verbose", "-v", action="store_true", help="log progress details")
    return parser


def _parse_classes(text: Optional[str]) -> Optional[List[Any]]:
    if not text:
        return None
    items = [item.strip() for item in text.split(",") if item.strip()]
    return [int(item) if item.isdigit() else item for item in items]


def _as_source(text: str) -> Any:
    """A digit string that is not an existing path is a camera index."""
    if text.isdigit() and not Path(text).exists():
        return int(text)
    return text


def _stem(source: Any, kind: str) -> str:
    if kind == "camera":
        return f"camera{source}"
    name = str(source).split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
    return Path(name).stem or "image"


class _Writer:
    """Annotated outputs under ``--save DIR``; names are made unique within a run."""

    def __init__(self, folder: Path, write_json: bool) -> None:
        self.folder = folder
        self.write_json = write_json
        self.used: Dict[str, int] = {}
        folder.mkdir(parents=True, exist_ok=True)

    def unique(self, stem: str) -> str:
        count = self.used.get(stem, 0)
        self.used[stem] = count + 1
        return stem if count == 0 else f"{stem}_{count}"

    def image(self, result: Any) -> None:
        from_file = bool(result.source) and not result.source.startswith("<")
        suffix = Path(str(result.source).split("?", 1)[0]).suffix.lower() if from_file else ""
        stem = self.unique(_stem(result.source, "image") if from_file else "image")
        result.save(self.folder / f"{stem}{suffix if suffix in _IMAGE_OUT_SUFFIXES else '.jpg'}")
        if self.write_json:
            result.save(self.folder / f"{stem}.json")


class _VideoWriter:
    """An annotated ``.mp4`` (and ``.jsonl`` with --json) for one video or camera stream."""

    def __init__(self, folder: Path, stem: str, fps: Optional[float], write_json: bool) -> None:
        self.path = folder / f"{stem}.mp4"
        self.json_path = folder / f"{stem}.jsonl" if write_json else None
        self.fps = fps or 25.0
        self.writer: Any = None
        self.json_file: Optional[TextIO] = None

    def add(self, result: Any) -> None:
        import cv2

        frame = cv2.cvtColor(result.plot(), cv2.COLOR_RGB2BGR)
        if self.writer is None:
            height, width = frame.shape[:2]
            self.writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, (width, height))
            if not self.writer.isOpened():
                raise OSError(f"OpenCV could not open {str(self.path)!r} for writing an mp4v video.")
            if self.json_path is not None:
                self.json_file = open(self.json_path, "w")
        self.writer.write(frame)
        if self.json_file is not None:
            self.json_file.write(result.to_json() + "\n")

    def close(self) -> None:
        if self.writer is not None:
            self.writer.release()
        if self.json_file is not None:
            self.json_file.close()


def _print_result(result: Any, as_json: bool, out: TextIO) -> None:
    if as_json:
        out.write(result.to_json() + "\n")
        return
    where = result.source + (f" frame {result.frame_index}" if result.frame_index is not None else "")
    out.write(f"{where}: {result.num_detections} detections\n")
    for label, score, (x1, y1, x2, y2) in zip(result["labels"], result["scores"].tolist(), result["boxes"].tolist()):
        out.write(f"  {label} {score:.3f} {x1:.1f} {y1:.1f} {x2:.1f} {y2:.1f}\n")


def run(args: argparse.Namespace, out: TextIO) -> int:
    """Build the detector and process every source; returns the exit code."""
    from tqdm import tqdm

    from ..pipelines import open_source, pipeline

    options = {
        "score_threshold": args.score_threshold, "iou_threshold": args.iou_threshold,
        "max_detections": args.max_detections, "classes": _parse_classes(args.classes), "img_size": args.img_size,
        "resize": args.resize, "device": args.device, "half": True if args.half else None,
        "batch_size": args.batch_size, "keep_image": bool(args.save), "threads": args.threads,
        "int8": True if args.int8 else None, "calibration": args.calibration,
    }
    sources = [open_source(_as_source(text)) for text in args.sources]  # fail early on a bad source
    engine = "onnxruntime" if args.int8 and args.engine is None else args.engine
    detector = pipeline("image-object-detection", model=args.model, checkpoint=args.checkpoint, engine=engine,
                        **{k: v for k, v in options.items() if v is not None})
    writer = _Writer(Path(args.save), args.json) if args.save else None
    total_detections = 0
    for source in sources:
        video = None
        if writer is not None and source.kind in ("video", "camera"):
            video = _VideoWriter(writer.folder, writer.unique(_stem(source.name, source.kind)), source.fps, args.json)
        show = sys.stderr.isatty() and (source.total or 0) != 1
        try:
            for result in tqdm(detector.iterate(source), total=source.total, desc=source.name, unit="img",
                               disable=not show, leave=False):
                total_detections += result.num_detections
                _print_result(result, args.json, out)
                if video is not None:
                    video.add(result)
                elif writer is not None:
                    writer.image(result)
        finally:
            if video is not None:
                video.close()
    logger.info("%d detections in total", total_detections)
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``damo-detect`` and ``python -m damo_pipeline.cli.detect``.

    Args:
        argv: command-line arguments (default ``sys.argv[1:]``).

    Returns:
        The exit code (0 success, 2 bad input/options/weights, 130 interrupted).
    """
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format=f"{PROG}: %(levelname)s: %(message)s")
    try:
        return run(args, sys.stdout)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except (OSError, ValueError) as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
