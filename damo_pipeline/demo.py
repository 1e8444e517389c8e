"""Detection demo: run a zoo model on one image and write an annotated copy.

Usage::

    python -m damo_pipeline.demo [--model damoyolo-t] [--image PATH] [--checkpoint PATH]
                                 [--out demo_out.jpg] [--score-threshold 0.3]

Weights are resolved in this order:

1. ``--checkpoint PATH`` (a local ``.pth`` or ``.safetensors`` file);
2. the environment variable ``DAMO_PIPELINE_WEIGHTS``;
3. ``DAMO_PIPELINE_DEMO_URL`` (a ``.pth`` URL) when set; otherwise the zoo model itself through
   :func:`damo_pipeline.hub.load_detector`: the official release file in the project cache
   (``$DAMO_PIPELINE_CACHE``, default ``~/.cache/damo_pipeline``), downloaded there if missing
   (``DAMO_PIPELINE_RELEASE_MIRROR`` replaces the release server), then the ModelScope repo of the model.

A source that is given explicitly (1 or 2) but unusable is an error, not a
reason to fall through to a download. When no weights can be had, one
paragraph on stderr says what was tried and how to provide weights, and the
exit code is 2.

Exit codes: 0 success, 2 unusable input (no image, no weights).
"""

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

from damo_pipeline.hub import WeightsNotFoundError, load_detector, url_cache_path
from damo_pipeline.hub.cache import MIRROR_ENV
from damo_pipeline.models import ZOO_CARDS, Detector, list_models

REPO_ROOT = Path(__file__).resolve().parent.parent
SAMPLE_IMAGES = REPO_ROOT.parent / "shared" / "data" / "coco128" / "images"
WEIGHTS_ENV = "DAMO_PIPELINE_WEIGHTS"
URL_ENV = "DAMO_PIPELINE_DEMO_URL"

RELEASE_PAGE = "https://github.com/tinyvision/DAMO-YOLO#model-zoo"


def release_url(model: str) -> str:
    """The official release file of a zoo model (its best published weights)."""
    return ZOO_CARDS[model].default.url


class WeightsUnavailable(Exception):
    """No usable weights; ``attempts`` lists each source tried and why it failed."""

    def __init__(self, attempts: List[str]) -> None:
        super().__init__("; ".join(attempts))
        self.attempts = attempts


def cached_path(url: str) -> Path:
    """Where the file at ``url`` is kept once downloaded (the hub resolver's cache)."""
    return url_cache_path(url)


def default_image() -> Optional[Path]:
    """First image of ``../shared/data/coco128/images`` beside the repo, if present."""
    if not SAMPLE_IMAGES.is_dir():
        return None
    images = sorted(p for p in SAMPLE_IMAGES.iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
    return images[0] if images else None


def weights_source(checkpoint: Optional[str]) -> Tuple[Optional[str], List[str]]:
    """The checkpoint to load (None: the zoo model's own weights) and the sources already passed over.

    Raises:
        WeightsUnavailable: ``--checkpoint`` or ``DAMO_PIPELINE_WEIGHTS`` names a missing file.
    """
    if checkpoint:
        if Path(checkpoint).is_file():
            return checkpoint, []
        raise WeightsUnavailable([f"--checkpoint {checkpoint}: file not found"])
    attempts = ["--checkpoint: not given"]
    from_env = os.environ.get(WEIGHTS_ENV)
    if from_env:
        if Path(from_env).is_file():
            return from_env, attempts
        raise WeightsUnavailable(attempts + [f"{WEIGHTS_ENV}={from_env}: file not found"])
    attempts.append(f"{WEIGHTS_ENV}: not set")
    return os.environ.get(URL_ENV) or None, attempts


def load_model(model: str, checkpoint: Optional[str]) -> Tuple[Detector, str]:
    """The zoo model with weights (see the module docstring for the order) and where they came from.

    Raises:
        WeightsUnavailable: listing every source tried and why it failed.
        ValueError: the weights do not fit the model (CheckpointMismatchError) or cannot be read.
    """
    source, attempts = weights_source(checkpoint)
    try:
        detector = load_detector(model, checkpoint=source)
    except WeightsNotFoundError as e:
        raise WeightsUnavailable(attempts + [f"{where}: {why}" for where, why in e.attempts]) from e
    return detector, source or f"the {model} zoo weights"


def explain_missing_weights(model: str, attempts: Sequence[str]) -> str:
    """The one-paragraph explanation printed when no weights could be had."""
    return (
        f"damo-demo: no weights for {model}. Tried, in order: {'; '.join(attempts)}. "
        f"Provide a checkpoint with --checkpoint PATH or {WEIGHTS_ENV}=PATH "
        f"(a .pth or .safetensors file of {model}), or set {MIRROR_ENV} to a server that copies the release files. "
        f"The official release file is {release_url(model)} (model zoo: {RELEASE_PAGE}); saved as "
        f"{cached_path(release_url(model))} it is found without a download."
    )


def _parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="damo-demo", description="Run a DAMO-YOLO zoo model on one image and write an annotated copy."
    )
    parser.add_argument("--model", default="damoyolo-t", choices=list_models(), help="zoo id (default: damoyolo-t)")
    sample = default_image()
    parser.add_argument(
        "--image",
        default=str(sample) if sample else None,
        help="input image (default: the first image of ../shared/data/coco128/images, if present)",
    )
    parser.add_argument("--checkpoint", help="local .pth or .safetensors weights file")
    parser.add_argument("--out", default="demo_out.jpg", help="annotated output image (default: demo_out.jpg)")
    parser.add_argument("--score-threshold", type=float, default=0.3, help="minimum class score (default: 0.3)")
    return parser.parse_args(argv)


def _draw(image_bgr, boxes, scores, labels, names: Sequence[str]) -> None:
    """Draw xyxy boxes (original-image pixels) with ``name score`` captions, in place."""
    import cv2

    for (x1, y1, x2, y2), score, label in zip(boxes.tolist(), scores.tolist(), labels.tolist()):
        color = tuple(int(c) for c in ((label * 67) % 256, (label * 131) % 256, (label * 197 + 80) % 256))
        p1, p2 = (int(round(x1)), int(round(y1))), (int(round(x2)), int(round(y2)))
        cv2.rectangle(image_bgr, p1, p2, color, 2)
        caption = f"{names[label] if label < len(names) else label} {score:.2f}"
        (tw, th), baseline = cv2.getTextSize(caption, cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1)
        top = max(p1[1] - th - baseline, 0)
        cv2.rectangle(image_bgr, (p1[0], top), (p1[0] + tw, top + th + baseline), color, -1)
        cv2.putText(image_bgr, caption, (p1[0], top + th), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1)


def detect(model, image_rgb, score_threshold: float, iou_threshold: float) -> Tuple:
    """Run the official preprocessing, the model and multi-class NMS on one image.

    Args:
        model: an eval-mode detector with ``config.img_size`` (int); ``model(x)``
            returns ``(scores [1, A, K], boxes [1, A, 4])``, xyxy in network pixels.
        image_rgb: ``[H, W, 3]`` uint8 RGB array.
        score_threshold: candidate threshold (strict ``>``).
        iou_threshold: NMS IoU threshold.

    Returns:
        ``(boxes [D, 4], scores [D], labels [D])``; boxes xyxy in original-image pixels.
    """
    import cv2
    import numpy as np
    import torch

    from damo_pipeline.ops.torch_nms import multiclass_nms

    size = int(model.config.img_size)
    height, width = image_rgb.shape[:2]
    resized = cv2.resize(image_rgb, (size, size), interpolation=cv2.INTER_LINEAR)  # stretch, no letterbox
    x = torch.from_numpy(np.ascontiguousarray(resized.transpose(2, 0, 1), dtype=np.float32))[None]
    with torch.inference_mode():
        scores, boxes = model(x)
    boxes, scores, labels = multiclass_nms(scores[0], boxes[0], score_threshold, iou_threshold)
    scale = boxes.new_tensor([width / size, height / size, width / size, height / size])
    return boxes * scale, scores, labels


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``python -m damo_pipeline.demo`` and ``damo-demo``.

    Args:
        argv: command-line arguments (default: ``sys.argv[1:]``).

    Returns:
        Process exit code: 0 on success, 2 when the image or the weights are unusable.
    """
    args = _parse_args(argv)
    # The hub clients retry loudly on a closed network; their warnings would bury the one
    # paragraph this demo prints when no weights can be had.
    for noisy in ("modelscope", "modelscope_hub", "huggingface_hub"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    if args.image is None:
        print(
            "damo-demo: no image given and no sample image found in ../shared/data/coco128/images; "
            "pass --image PATH.",
            file=sys.stderr,
        )
        return 2
    image_path = Path(args.image)
    if not image_path.is_file():
        print(f"damo-demo: --image {image_path}: file not found.", file=sys.stderr)
        return 2

    try:
        model, weights = load_model(args.model, args.checkpoint)
    except WeightsUnavailable as e:
        print(explain_missing_weights(args.model, e.attempts), file=sys.stderr)
        return 2
    except (RuntimeError, ValueError, KeyError, OSError) as e:
        print(f"damo-demo: could not load weights into {args.model}: {e}", file=sys.stderr)
        return 2

    import cv2
    import numpy as np
    from PIL import Image

    model.fuse()
    model.eval()

    with Image.open(image_path) as im:
        image_rgb = np.asarray(im.convert("RGB"))
    boxes, scores, labels = detect(model, image_rgb, args.score_threshold, model.config.iou_threshold)

    names = list(model.config.class_names)
    for (x1, y1, x2, y2), score, label in zip(boxes.tolist(), scores.tolist(), labels.tolist()):
        name = names[label] if label < len(names) else str(label)
        print(f"{name} {score:.3f} {x1:.1f} {y1:.1f} {x2:.1f} {y2:.1f}")

    canvas = cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR)
    _draw(canvas, boxes, scores, labels, names)
    if not cv2.imwrite(str(args.out), canvas):
        print(f"damo-demo: could not write {args.out}.", file=sys.stderr)
        return 2
    print(f"damo-demo: {len(labels)} detections on {image_path} with {weights}; wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
