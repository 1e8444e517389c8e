"""Latency of ModelScope's own DAMO-YOLO pipeline, built offline from a local model folder (benchmark baseline).

Runs under the second virtual environment made by ``benchmarks/setup_modelscope_venv.sh`` (ModelScope's
``tinynas_detection`` code imports torchvision, which cannot sit beside the project's torch build), in a
subprocess started by ``benchmarks/latency.py``. It does not import ``damo_pipeline``::

    bash benchmarks/setup_modelscope_venv.sh
    benchmarks/.venv-modelscope/bin/python benchmarks/modelscope_baseline.py --size t --weights t.pth \\
        --images ../shared/data/coco128/images/*.jpg --batch 1 --threads 2 --runs 20 --warmup 3 --out ms_t_b1.json

What it builds. The files a ModelScope hub snapshot of ``damo/cv_tinynas_object-detection_damoyolo-t`` (``-s``)
holds, written into a temporary folder: ``configuration.json`` (task ``image-object-detection``, pipeline
``tinynas-detection``, model ``tinynas-damoyolo``), the model config ``damoyolo.py`` that ModelScope's
``DamoYolo`` model class reads (generated here as plain data: the official T/S backbone, neck and head settings
and the NMS thresholds), the TinyNAS structure file (from the project's ``damo_pipeline/models/structures``
JSON, read as data), a COCO label map pickle and the weights. Then, exactly as a ModelScope user::

    p = pipeline(Tasks.image_object_detection, model=folder, device="cpu", trust_remote_code=True)
    p(image_path)            # batch 1
    p([8 image paths])       # batch 8

``trust_remote_code=True`` is needed because ModelScope executes the model folder's ``damoyolo.py``; that file
is the one this script just wrote, never a downloaded one.

Weights. ``--weights`` is an official-format DAMO-YOLO checkpoint (``torch.save({'model': state_dict})``, the
official key names, 80 COCO classes; ``'state_dict'`` or a bare state dict also work). ModelScope's copy of
``ZeroHead`` is the pre-v0.3.0 one, whose ``gfl_cls`` convolutions have ``num_classes + 1`` = 81 output
channels (the last one is dropped at inference). An 80-channel checkpoint is therefore given one extra channel
(zero kernel, bias -1e4) that ModelScope slices off before any use, so the 80 real classes are computed from
exactly the given weights. An 81-channel (legacy) checkpoint is used as it is.

What ModelScope's pipeline does per image (recorded in the JSON): PIL decode with EXIF transpose, RGB,
float32 CHW at the ORIGINAL size (no resize), zero padding at the bottom/right to a multiple of 32, the training-
form network (RepConv branches not fused), then its own multiclass NMS (score > 0.05, class-aware IoU 0.7,
at most 500 boxes). A list input is processed one image at a time (``Pipeline.__call__`` loops over
``_process_single``); ``batch_size=8`` is tried once and its outcome recorded. Boxes are xyxy in original-image
pixels, since there is no resize.

Timing: ``--warmup`` calls, then ``--runs`` timed calls of the whole pipeline call; call ``i`` uses the images
``images[(i * batch + j) % len(images)]``, ``j < batch`` (warm-up calls use the same schedule from the start).
``per_image_ms`` is each call's time divided by ``batch``. ``detections`` holds ModelScope's results on the first
two images (boxes xyxy in original pixels, scores, label names and 0-based ids, the original size and the padded
network input size): the same weights run through our pipeline with ``img_size=input_size_hw``,
``resize="letterbox"`` (a no-op scale of 1 when one side is already a multiple of 32, as for 640-pixel COCO photos),
``clip_boxes=False``, ``max_detections=500`` and the same thresholds give the same detections. ``network_ms`` times ``p.model.forward`` alone
(backbone, neck, head with box decoding; no NMS): on each scheduled image's own preprocessed tensor, and on a
``[batch, 3, 640, 640]`` tensor of stretch-resized photos (the official 640x640 input) for a same-size
comparison. Statistics are median, mean, p10, p90, min and max in milliseconds.
"""
from __future__ import annotations

import argparse
import ast
import json
import os
import pickle
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple

# Everything is local; make sure no library of the ModelScope stack reaches for a hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from timing import batch_of, peak_rss_mb, summarize, timed_calls  # noqa: E402  (benchmarks/timing.py)
import torch  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_STRUCTURES_DIR = REPO_ROOT / "damo_pipeline" / "models" / "structures"

# COCO 2017 class names in the order of the 80 contiguous class indices the official models use.
COCO_CLASS_NAMES: Tuple[str, ...] = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
    "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow",
    "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee",
    "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard",
    "tennis racket", "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
    "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard", "cell phone",
    "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors", "teddy bear",
    "hair drier", "toothbrush",
)

# Official DAMO-YOLO T and S (configs/damoyolo_tinynasL20_T.py, damoyolo_tinynasL25_S.py; spec/architecture.md §1.1),
# in the layout of ModelScope's damoyolo.py model config. Hub-style file names for the weights and structures.
MODEL_SETTINGS: Dict[str, Dict[str, Any]] = {
    "t": {
        "hub_id": "damo/cv_tinynas_object-detection_damoyolo-t",
        "weights_file": "damoyolo_tinynasL20_T.pth",
        "structure": "tinynas_L20_k1kx",
        "neck": {"depth": 1.0, "hidden_ratio": 1.0, "in_channels": [96, 192, 384], "out_channels": [64, 128, 256]},
        "head_in_channels": [64, 128, 256],
    },
    "s": {
        "hub_id": "damo/cv_tinynas_object-detection_damoyolo-s",
        "weights_file": "damoyolo_tinynasL25_S.pth",
        "structure": "tinynas_L25_k1kx",
        "neck": {"depth": 1.0, "hidden_ratio": 0.75, "in_channels": [128, 256, 512],
                 "out_channels": [128, 256, 512]},
        "head_in_channels": [128, 256, 512],
    },
}
NUM_CLASSES = len(COCO_CLASS_NAMES)
NETWORK_SIZE = 640  # the official T/S input side, for the same-size network timing
DETECTION_IMAGES = 2  # images whose detections go into the JSON


# --------------------------------------------------------------------------------------------------------------
# The local model folder
# --------------------------------------------------------------------------------------------------------------
def load_official_state_dict(path: Path) -> Dict[str, torch.Tensor]:
    """Read an official-format checkpoint (``{'model': sd}``, ``{'state_dict': sd}`` or a bare state dict).

    Loaded with ``weights_only=True``: tensors only, no pickled code. A leading ``module.`` is stripped.
    """
    if not path.is_file():
        raise FileNotFoundError(f"--weights {path}: no such file; pass an official-format DAMO-YOLO checkpoint "
                                f"(torch.save({{'model': state_dict}}, path)).")
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(checkpoint, dict) and isinstance(checkpoint.get("model"), dict):
        state_dict = checkpoint["model"]
    elif isinstance(checkpoint, dict) and isinstance(checkpoint.get("state_dict"), dict):
        state_dict = checkpoint["state_dict"]
    elif isinstance(checkpoint, dict) and all(isinstance(v, torch.Tensor) for v in checkpoint.values()):
        state_dict = checkpoint
    else:
        raise ValueError(f"--weights {path}: expected {{'model': state_dict}}, {{'state_dict': state_dict}} or a "
                         f"bare state dict, got {type(checkpoint).__name__} with keys "
                         f"{list(checkpoint)[:5] if isinstance(checkpoint, dict) else '-'}.")
    return {key[len("module."):] if key.startswith("module.") else key: value for key, value in state_dict.items()}


def to_modelscope_head(state_dict: Dict[str, torch.Tensor], weights: Path) -> Tuple[Dict[str, torch.Tensor], str]:
    """Give ``head.gfl_cls.*`` the 81 output channels of ModelScope's (pre-v0.3.0) ZeroHead.

    Returns the state dict to save and a note on what was done. The added channel has a zero kernel and bias
    -1e4; ModelScope drops it (``cls_scores[..., :num_classes]``) before decoding and NMS.
    """
    cls_keys = sorted(key for key in state_dict if key.startswith("head.gfl_cls.") and key.endswith(".weight"))
    if not cls_keys:
        raise ValueError(f"--weights {weights}: no 'head.gfl_cls.*.weight' entries; is this a DAMO-YOLO T/S "
                         f"checkpoint with the official key names?")
    channels = {int(state_dict[key].shape[0]) for key in cls_keys}
    if channels == {NUM_CLASSES + 1}:
        return dict(state_dict), "81-channel (legacy) classification head used as it is"
    if channels != {NUM_CLASSES}:
        raise ValueError(f"--weights {weights}: classification head has {sorted(channels)} output channels; this "
                         f"baseline runs the 80 COCO classes (80, or 81 for a legacy checkpoint).")
    converted = dict(state_dict)
    for weight_key in cls_keys:
        bias_key = weight_key[: -len("weight")] + "bias"
        weight, bias = state_dict[weight_key], state_dict[bias_key]
        converted[weight_key] = torch.cat([weight, weight.new_zeros((1,) + tuple(weight.shape[1:]))], dim=0)
        converted[bias_key] = torch.cat([bias, bias.new_full((1,), -1e4)], dim=0)
    return converted, "80-channel head padded with a dummy 81st channel (zero kernel, bias -1e4) that ModelScope drops"


def structure_literal(structures_dir: Path, name: str) -> str:
    """The TinyNAS structure as the Python literal text of an official ``.txt`` structure file."""
    path = structures_dir / f"{name}.json"
    if not path.is_file():
        raise FileNotFoundError(f"structure file {path} not found; pass --structures-dir pointing at the project's "
                                f"damo_pipeline/models/structures folder.")
    structure = json.loads(path.read_text())["structure"]
    text = repr(structure)
    if ast.literal_eval("".join(ch.strip() for ch in text)) != structure:  # how ModelScope parses it
        raise ValueError(f"{path}: structure does not survive ModelScope's whitespace-stripping parser.")
    return text


def model_config_text(size: str, weights_file: str, structure_file: str, score_threshold: float,
                      iou_threshold: float) -> str:
    """ModelScope's ``damoyolo.py`` for the official T/S settings: module-level plain data, no code."""
    settings = MODEL_SETTINGS[size]
    model = {
        "name": weights_file,
        "class_map": "label_map.pkl",
        "backbone": {"name": "TinyNAS_res", "structure_file": structure_file, "out_indices": (2, 4, 5),
                     "with_spp": True, "use_focus": True, "act": "relu", "reparam": True},
        "neck": {"name": "GiraffeNeckV2", **settings["neck"], "act": "relu", "spp": False,
                 "block_name": "BasicBlock_3x3_Reverse"},
        "head": {"name": "ZeroHead", "num_classes": NUM_CLASSES, "in_channels": settings["head_in_channels"],
                 "stacked_convs": 0, "reg_max": 16, "act": "silu", "strides": [8, 16, 32],
                 "nms_conf_thre": score_threshold, "nms_iou_thre": iou_threshold},
    }
    dataset = {"size_divisibility": 32, "class_names": list(COCO_CLASS_NAMES)}
    return ("# Generated by damo_pipeline benchmarks/modelscope_baseline.py: ModelScope DAMO-YOLO model config.\n"
            f"model = {model!r}\n"
            f"dataset = {dataset!r}\n")


def write_model_folder(folder: Path, size: str, weights: Path, structures_dir: Path, score_threshold: float,
                       iou_threshold: float) -> str:
    """Write the files of a ModelScope DAMO-YOLO snapshot into ``folder``; returns the weights note."""
    settings = MODEL_SETTINGS[size]
    state_dict, note = to_modelscope_head(load_official_state_dict(weights), weights)
    torch.save({"model": state_dict}, folder / settings["weights_file"])
    structure_file = f"{settings['structure']}.txt"
    (folder / structure_file).write_text(structure_literal(structures_dir, settings["structure"]) + "\n")
    # ModelScope reads label names as label_map[class_index + 1][0]['name'].
    label_map = {index + 1: [{"id": index + 1, "name": name}] for index, name in enumerate(COCO_CLASS_NAMES)}
    with open(folder / "label_map.pkl", "wb") as handle:
        pickle.dump(label_map, handle)
    (folder / "damoyolo.py").write_text(model_config_text(size, settings["weights_file"], structure_file,
                                                          score_threshold, iou_threshold))
    configuration = {
        "framework": "pytorch",
        "task": "image-object-detection",
        "pipeline": {"type": "tinynas-detection"},
        "model": {"type": "tinynas-damoyolo"},
        "preprocessor": {"type": "object-detection-tinynas-preprocessor", "size_divisible": 32},
    }
    (folder / "configuration.json").write_text(json.dumps(configuration, indent=2))
    return note


def as_list(value: Any) -> List[Any]:
    """A JSON-friendly list from an array, tensor or list."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return list(value)


def detections_of(result: Dict[str, Any]) -> Dict[str, Any]:
    """ModelScope's result ``{'scores', 'labels', 'boxes'}`` as lists, with 0-based label ids added."""
    names = [str(name) for name in as_list(result["labels"])]
    index = {name: i for i, name in enumerate(COCO_CLASS_NAMES)}
    return {"boxes": [[round(float(v), 4) for v in box] for box in as_list(result["boxes"])],
            "scores": [round(float(v), 6) for v in as_list(result["scores"])],
            "labels": names, "label_ids": [index[name] for name in names]}


def stretched_batch(images: Sequence[str], batch: int) -> torch.Tensor:
    """``[batch, 3, 640, 640]`` float 0..255 RGB: the first ``batch`` scheduled photos, stretch-resized (official)."""
    from PIL import Image  # ModelScope's own decoder

    tensors = []
    for path in batch_of(images, 0, batch):
        rgb = np.asarray(Image.open(path).convert("RGB"))
        rgb = cv2.resize(rgb, (NETWORK_SIZE, NETWORK_SIZE), interpolation=cv2.INTER_LINEAR)
        tensors.append(torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1), dtype=np.float32)))
    return torch.stack(tensors)


# --------------------------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------------------------
def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Time ModelScope's own DAMO-YOLO pipeline (built offline from a local folder) on real photos.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--size", choices=sorted(MODEL_SETTINGS), required=True, help="DAMO-YOLO size.")
    parser.add_argument("--weights", type=Path, required=True,
                        help="official-format checkpoint: torch.save({'model': state_dict}), 80 COCO classes.")
    parser.add_argument("--images", nargs="+", required=True, help="image files (e.g. coco128 jpgs).")
    parser.add_argument("--batch", type=int, choices=(1, 8), default=1, help="images per pipeline call.")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads.")
    parser.add_argument("--runs", type=int, default=20, help="timed calls after warm-up.")
    parser.add_argument("--warmup", type=int, default=3, help="untimed calls first.")
    parser.add_argument("--network-runs", type=int, default=None,
                        help="timed network-only forwards per variant (default --runs; 0 skips network timing).")
    parser.add_argument("--score-threshold", type=float, default=0.05,
                        help="ModelScope nms_conf_thre (keeps scores strictly above it); official 0.05.")
    parser.add_argument("--iou-threshold", type=float, default=0.7, help="ModelScope nms_iou_thre; official 0.7.")
    parser.add_argument("--structures-dir", type=Path, default=DEFAULT_STRUCTURES_DIR,
                        help="folder of the TinyNAS structure JSON files (read as data).")
    parser.add_argument("--out", type=Path, required=True, help="JSON file to write.")
    args = parser.parse_args(argv)
    if args.threads < 1:
        parser.error(f"--threads must be >= 1, got {args.threads}")
    if args.runs < 1 or args.warmup < 0:
        parser.error(f"--runs must be >= 1 and --warmup >= 0, got {args.runs} and {args.warmup}")
    if args.network_runs is None:
        args.network_runs = args.runs
    missing = [path for path in args.images if not Path(path).is_file()]
    if missing:
        parser.error(f"--images: not found: {missing[:5]}")
    for name in ("score_threshold", "iou_threshold"):
        if not 0.0 <= getattr(args, name) <= 1.0:
            parser.error(f"--{name.replace('_', '-')} must be in [0, 1], got {getattr(args, name)}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    images = [str(Path(path).resolve()) for path in args.images]

    import modelscope
    import torchvision
    from modelscope.pipelines import pipeline
    from modelscope.preprocessors import LoadImage
    from modelscope.utils.constant import Tasks

    with tempfile.TemporaryDirectory(prefix="modelscope_damoyolo_") as temp_dir:
        folder = Path(temp_dir) / MODEL_SETTINGS[args.size]["hub_id"].replace("/", "--")
        folder.mkdir(parents=True)
        weights_note = write_model_folder(folder, args.size, args.weights, args.structures_dir,
                                          args.score_threshold, args.iou_threshold)
        start = time.perf_counter()
        detector = pipeline(Tasks.image_object_detection, model=str(folder), device="cpu", trust_remote_code=True)
        build_seconds = time.perf_counter() - start

        detections = {}
        for path in images[:DETECTION_IMAGES]:
            entry = detections_of(detector(path))
            entry["image_size_hw"] = list(LoadImage.convert_to_ndarray(path).shape[:2])
            entry["input_size_hw"] = list(detector.preprocess(path)["img"].shape[2:])
            detections[Path(path).name] = entry

        # How ModelScope treats an explicit batch_size: recorded, not timed.
        try:
            detector(batch_of(images, 0, 8), batch_size=8)
            batched_call = {"supported": True}
        except (TypeError, ValueError, RuntimeError, AssertionError, KeyError, IndexError) as error:
            # Not a failure of this benchmark: how ModelScope handles batch_size is the finding being recorded.
            batched_call = {"supported": False, "error": f"{type(error).__name__}: {error}"[:300]}

        if args.batch == 1:
            call_seconds = timed_calls(lambda i: detector(images[i % len(images)]), args.warmup, args.runs)
        else:
            call_seconds = timed_calls(lambda i: detector(batch_of(images, i, args.batch)), args.warmup, args.runs)

        # Network only: ModelScope's model forward (backbone, neck, head with decoding; no NMS).
        network: Dict[str, Any] | None = None
        input_sizes: Dict[str, List[int]] = {}
        if args.network_runs > 0:
            model = detector.model
            prepared: Dict[str, torch.Tensor] = {}
            for path in dict.fromkeys(batch_of(images, i, args.batch)[j]
                                      for i in range(args.warmup + args.network_runs) for j in range(args.batch)):
                tensor = torch.from_numpy(detector.preprocess(path)["img"])
                prepared[path] = tensor
                input_sizes[Path(path).name] = list(tensor.shape[2:])
            with torch.no_grad():
                per_image = timed_calls(
                    lambda i: [model.forward(prepared[path]) for path in batch_of(images, i, args.batch)],
                    args.warmup, args.network_runs)
                fixed = stretched_batch(images, args.batch)
                fixed_seconds = timed_calls(lambda i: model.forward(fixed), args.warmup, args.network_runs)
            network = {
                "pipeline_inputs": {
                    "what": "model.forward on each image's own preprocessed tensor (original size padded to /32), "
                            "one image at a time as the pipeline runs it",
                    "per_call_ms": summarize(per_image), "per_image_ms": summarize(per_image, args.batch)},
                f"fixed_{NETWORK_SIZE}": {
                    "what": f"model.forward on one [{args.batch}, 3, {NETWORK_SIZE}, {NETWORK_SIZE}] tensor of "
                            "stretch-resized photos (official input)",
                    "per_call_ms": summarize(fixed_seconds), "per_image_ms": summarize(fixed_seconds, args.batch)},
            }

    result = {
        "implementation": f"modelscope {modelscope.__version__}",
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "python": platform.python_version(),
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform()},
        "size": args.size,
        "model_folder_as": MODEL_SETTINGS[args.size]["hub_id"],
        "weights": str(args.weights),
        "weights_note": weights_note,
        "batch": args.batch,
        "threads": args.threads,
        "runs": args.runs,
        "warmup": args.warmup,
        "images": [Path(path).name for path in images],
        "schedule": "call i uses images[(i * batch + j) % len(images)], j < batch; warm-up calls come first",
        "call": ("p(image_path)" if args.batch == 1 else
                 f"p([{args.batch} image paths]) (ModelScope runs list items one at a time)"),
        "batched_call_with_batch_size_8": batched_call,
        "preprocess": "PIL decode + EXIF transpose, RGB, float32 CHW at the original size (no resize), "
                      "zero pad bottom/right to a multiple of 32; training-form network (RepConv not fused)",
        "build_s": round(build_seconds, 3),
        "per_call_ms": summarize(call_seconds),
        "per_image_ms": summarize(call_seconds, args.batch),
        "network_ms": network,
        "network_input_sizes_hw": input_sizes,
        "thresholds": {"score_threshold": args.score_threshold, "score_rule": "score > threshold",
                       "iou_threshold": args.iou_threshold, "nms": "class-aware torchvision batched_nms",
                       "max_detections": 500},
        "detections": detections,
        "peak_rss_mb": peak_rss_mb(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    summary = {key: result[key] for key in ("implementation", "size", "batch", "threads")}
    summary.update(per_call_median_ms=result["per_call_ms"]["median"],
                   per_image_median_ms=result["per_image_ms"]["median"])
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
