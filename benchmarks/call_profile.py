"""Where the time of one detection call goes, stage by stage, and what each speed change bought (same run).

    python benchmarks/call_profile.py --model damoyolo-t --runs 20 --out benchmarks/results/call_profile_t.json

Stages of ``pipeline(...)(path)`` (``damo_pipeline.pipelines.detection``): decode (file -> RGB uint8), resize
(cv2 INTER_LINEAR to 640x640), to-tensor (uint8 NHWC -> float NCHW for the network), network, NMS (candidates
above 0.05, class-aware, 500 kept, the official defaults), result (back-projection, class names, the result
object). Each is timed alone (median of ``--runs`` after warm-up), then the whole call, for the torch engine and
for the ONNX Runtime engine. "Before" variants, measured in the same process: the NCHW network (the official
layout; now the torch engine runs channels-last on CPU) and NMS without the per-class ``max_detections`` stop.

Weights: the parity weights of ``../shared/parity`` with BatchNorm calibrated on real coco128 photos (thousands
of candidates above 0.05, as with untrained or weak models: the NMS stage at its heaviest).
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Sequence

import numpy as np
import torch

from damo_pipeline import pipeline
from damo_pipeline.export import export_onnx
from damo_pipeline.models import build_model
from damo_pipeline.ops import batched_nms, batched_nms_numpy, multiclass_nms, multiclass_nms_numpy
from damo_pipeline.ops.resize import resize_image
from damo_pipeline.pipelines.inputs import ImageLoadOptions, load_image
from timing import summarize, timed_calls  # benchmarks/timing.py, beside this script

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


def median_ms(fn: Callable[[], Any], runs: int, warmup: int = 3) -> float:
    return summarize(timed_calls(lambda i: fn(), warmup, runs))["median"]


def calibrated_model(name: str, photos: Sequence[Path]) -> torch.nn.Module:
    sys.path.insert(0, str(SHARED / "parity"))
    import detweights

    torch.manual_seed(0)
    model = build_model(name)
    model.load_state_dict(detweights.det_state_dict(model.state_dict()), strict=True)
    detweights.calibrate_bn(model, torch.cat([detweights.official_preprocess(str(p), 320) for p in photos[:4]]))
    return model.eval()


def unbounded_nms_torch(scores: torch.Tensor, boxes: torch.Tensor) -> None:
    """The NMS before the per-class stop: every class resolved completely, then the best 500 taken."""
    anchor, labels = torch.nonzero(scores > 0.05, as_tuple=True)
    batched_nms(boxes[anchor], scores[anchor, labels], labels, 0.7)[:500]


def unbounded_nms_numpy(scores: np.ndarray, boxes: np.ndarray) -> None:
    anchor, labels = np.nonzero(scores > 0.05)
    batched_nms_numpy(boxes[anchor], scores[anchor, labels], labels, 0.7)[:500]


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="damoyolo-t")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    photos = sorted((SHARED / "data" / "coco128" / "images").glob("*.jpg"))
    if not photos:
        print("error: ../shared/data/coco128 not found", file=sys.stderr)
        return 2
    photo = str(photos[1])
    model = calibrated_model(args.model, photos)
    report: Dict[str, Any] = {"model": args.model, "threads": args.threads, "runs": args.runs, "photo": photos[1].name}
    with tempfile.TemporaryDirectory() as tmp:
        graph = export_onnx(model, Path(tmp) / "model.onnx")
        engines = {"torch": pipeline("image-object-detection", model=model, device="cpu"),
                   "onnxruntime": pipeline("image-object-detection", model=str(graph), threads=args.threads)}
        rgb = load_image(photo).rgb
        canvas = resize_image(rgb, (640, 640))[0]
        item = engines["torch"].preprocess(photo, img_size=(640, 640), resize="stretch")
        nchw_model = copy.deepcopy(model).fuse()
        for name, detector in engines.items():
            stages: Dict[str, float] = {}
            stages["decode"] = median_ms(lambda: load_image(photo, ImageLoadOptions()), args.runs)
            stages["resize"] = median_ms(lambda: resize_image(rgb, (640, 640)), args.runs)
            if name == "torch":
                pixels = torch.from_numpy(canvas[None])
                fmt = detector.memory_format(torch.device("cpu"))
                stages["to_tensor"] = median_ms(
                    lambda: pixels.permute(0, 3, 1, 2).float().contiguous(memory_format=fmt), args.runs)
                tensor = pixels.permute(0, 3, 1, 2).float().contiguous(memory_format=fmt)
                with torch.inference_mode():
                    stages["network"] = median_ms(lambda: detector.model(tensor), args.runs)
                    scores, boxes = detector.model(tensor)
                    stages["nms"] = median_ms(lambda: multiclass_nms(scores[0], boxes[0], 0.05, 0.7, 500), args.runs)
                    kept = multiclass_nms(scores[0], boxes[0], 0.05, 0.7, 500)
                    nchw = tensor.contiguous()
                    before = {"network_nchw": median_ms(lambda: nchw_model(nchw), args.runs),
                              "nms_without_per_class_stop": median_ms(lambda: unbounded_nms_torch(scores[0], boxes[0]),
                                                                      max(5, args.runs // 4))}
                    candidates = int((scores[0] > 0.05).sum())
                kept = tuple(t.numpy() for t in kept)
            else:
                pixels = canvas[None]
                stages["to_tensor"] = median_ms(
                    lambda: np.ascontiguousarray(pixels.transpose(0, 3, 1, 2), dtype=np.float32), args.runs)
                array = np.ascontiguousarray(pixels.transpose(0, 3, 1, 2), dtype=np.float32)
                stages["network"] = median_ms(lambda: detector.runner(array), args.runs)
                scores, boxes = detector.runner(array)
                stages["nms"] = median_ms(lambda: multiclass_nms_numpy(scores[0], boxes[0], 0.05, 0.7, 500), args.runs)
                kept = multiclass_nms_numpy(scores[0], boxes[0], 0.05, 0.7, 500)
                before = {"nms_without_per_class_stop": median_ms(lambda: unbounded_nms_numpy(scores[0], boxes[0]),
                                                                  max(5, args.runs // 4))}
            stages["result"] = median_ms(lambda: detector._build_result(kept[0], kept[1], kept[2], item, True, True),
                                         args.runs)
            stages["sum_of_stages"] = sum(stages.values())
            stages["whole_call"] = median_ms(lambda: detector(photo), args.runs)
            report[name] = {"stages_ms": stages, "before_ms": before}
        report["candidates_above_0.05"] = candidates
    lines = [f"{args.model}, one {report['photo']} call, {args.threads} threads, median of {args.runs} (ms); "
             f"{candidates} candidates above 0.05", "",
             "| stage | torch engine | ONNX Runtime engine |", "|---|---|---|"]
    for stage in report["torch"]["stages_ms"]:
        lines.append(f"| {stage} | {report['torch']['stages_ms'][stage]:.2f} | "
                     f"{report['onnxruntime']['stages_ms'][stage]:.2f} |")
    lines += ["", "| before the change | torch engine | ONNX Runtime engine |", "|---|---|---|",
              f"| network NCHW (official layout) | {report['torch']['before_ms']['network_nchw']:.2f} | n/a |",
              f"| NMS without the per-class stop | {report['torch']['before_ms']['nms_without_per_class_stop']:.2f} | "
              f"{report['onnxruntime']['before_ms']['nms_without_per_class_stop']:.2f} |"]
    table = "\n".join(lines) + "\n"
    print(table)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2))
        args.out.with_suffix(".md").write_text(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
