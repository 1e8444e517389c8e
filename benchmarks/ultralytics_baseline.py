"""Latency of an Ultralytics YOLO11 model through its own ``predict()`` (optional peer of ``latency.py``).

Runs under any Python that has ``ultralytics`` (never a dependency of this project; here the benchmark venv made
by ``bash benchmarks/setup_modelscope_venv.sh --with-ultralytics``, since ultralytics needs torchvision). It does
not import ``damo_pipeline``::

    benchmarks/.venv-modelscope/bin/python benchmarks/ultralytics_baseline.py --size s \\
        --images ../shared/data/coco128/images/*.jpg --batch 1 --threads 2 --runs 20 --out yolo11s_b1.json

Peers of similar COCO val AP (Ultralytics' table; DAMO-YOLO T 42.0, S 46.0): ``yolo11n`` (39.5) for T and
``yolo11s`` (47.0) for S. Without ``--weights`` the model is built from its YAML with random weights (its
released ``.pt`` files cannot be downloaded on this machine): the network costs the same, but random weights
leave no box above Ultralytics' default 0.25 confidence, so its NMS does almost nothing, which favours it slightly.

The whole call is ``model.predict(path_or_paths, imgsz=640, device="cpu")``: PIL/cv2 decode, its "rect"
letterbox to 640 on the long side (stride-aligned, so coco128's 640x480 photos run at 640x480), the network,
NMS and the Results objects. Call ``i`` reads ``images[(i * batch + j) % len(images)]``. The network alone is
also timed on a ``[batch, 3, 640, 640]`` tensor.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, List, Optional, Sequence

from timing import batch_of, peak_rss_mb, summarize, timed_calls  # benchmarks/timing.py, beside this script

PEERS = {"t": ("yolo11n", 39.5), "s": ("yolo11s", 47.0)}


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=sorted(PEERS), required=True, help="the DAMO-YOLO size to pair with")
    parser.add_argument("--weights", help="a YOLO11 .pt on disk (default: the peer's YAML, random weights)")
    parser.add_argument("--images", nargs="+", required=True)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    os.environ.setdefault("YOLO_OFFLINE", "1")
    import torch
    from ultralytics import YOLO, __version__

    torch.set_num_threads(args.threads)
    name, coco_ap = PEERS[args.size]
    weights = args.weights
    model = YOLO(weights or f"{name}.yaml")
    images: List[str] = args.images

    def call(i: int) -> Any:
        batch = batch_of(images, i, args.batch)
        return model.predict(batch if args.batch > 1 else batch[0], imgsz=640, device="cpu", verbose=False)

    call_seconds = timed_calls(call, args.warmup, args.runs)
    network = model.model.eval()
    tensor = torch.rand(args.batch, 3, 640, 640)
    with torch.inference_mode():
        network_seconds = timed_calls(lambda i: network(tensor), args.warmup, args.runs)
    result = {
        "implementation": f"ultralytics {__version__}", "torch": torch.__version__, "model": name,
        "coco_val_ap": coco_ap, "weights": weights or f"{name}.yaml (random init)", "size": args.size,
        "batch": args.batch, "threads": args.threads,
        "per_call_ms": summarize(call_seconds), "per_image_ms": summarize(call_seconds, args.batch),
        "network_ms_640": summarize(network_seconds, args.batch),
        "peak_rss_mb": peak_rss_mb(),
    }
    args.out.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
