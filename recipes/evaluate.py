"""Evaluate any DAMO-YOLO model on any detection dataset split with pycocotools (COCO AP).

    python recipes/evaluate.py --model runs/my-model --data path/to/dataset --split val
    python recipes/evaluate.py --model damoyolo-t --checkpoint damoyolo_tinynasL20_T_436.pth --data path/to/coco

``--model`` takes a training run folder (its best.pt), a training checkpoint (last.pt / best.pt), a hub
model folder (runs/my-model/model), a zoo or hub id, or a checkpoint file; ``--checkpoint`` gives weights
for a zoo id or config. The official evaluation protocol: RGB, resize to the model's input size
(stretch), no flip, multi-label NMS with the model's thresholds (≤ 500 detections per image), boxes
rescaled per axis to original pixels, ``COCOeval(iouType="bbox")``. The model's classes are matched to
the dataset's by name. Prints AP, AP50, AP75, APs/m/l, the recalls and a per-class AP table; ``--out``
writes them as JSON, ``--save-detections`` writes the COCO-format detections.
Several processes: ``torchrun --nproc_per_node=N recipes/evaluate.py ...``.
"""
import argparse
import logging
import os
import sys
from pathlib import Path
from typing import List, Optional

import torch

from damo_pipeline.data import EvalDataset, collate_detection, load_detection_dataset
from damo_pipeline.engine import COCOEvaluator, init_distributed
from damo_pipeline.engine.export import load_trained_model
from damo_pipeline.engine.recipe import configure_logging

logger = logging.getLogger("evaluate")


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--model", required=True, help="run folder, checkpoint, hub folder, zoo id or hub id")
    parser.add_argument("--checkpoint", help="weights for a zoo id / config .json given as --model")
    parser.add_argument("--data", required=True, help="dataset: COCO json / root, VOC root or YOLO data.yaml")
    parser.add_argument("--split", default="val", help="split to evaluate")
    parser.add_argument("--format", choices=["coco", "voc", "yolo"], help="dataset format (default: detected)")
    parser.add_argument("--img-size", type=int, help="input size (default: the model's)")
    parser.add_argument("--batch-size", type=int, default=16, help="images per forward pass per process")
    parser.add_argument("--workers", type=int, default=2, help="data-loading processes")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:1 or auto")
    parser.add_argument("--score-threshold", type=float, help="candidate score threshold (default: the model's)")
    parser.add_argument("--iou-threshold", type=float, help="NMS IoU threshold (default: the model's)")
    parser.add_argument("--no-fuse", action="store_true", help="evaluate the training form (default: fused, "
                                                               "as the official tools/eval.py)")
    parser.add_argument("--no-channels-last", action="store_true", help="keep the default memory format (default: "
                                                                        "channels_last, as the trainer)")
    parser.add_argument("--out", help="write the metrics and per-class AP here (JSON)")
    parser.add_argument("--save-detections", help="write the COCO-format detections here (JSON)")
    parser.add_argument("--verbose", action="store_true")
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    configure_logging(int(os.environ.get("RANK", "0")), args.verbose)
    try:
        ctx = init_distributed(args.device)
        model = load_trained_model(args.model, args.checkpoint)
        dataset = load_detection_dataset(args.data, split=args.split, format=args.format)
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    model_classes = model.class_names
    category_of = dict(zip(dataset.class_names, dataset.category_ids))
    category_ids = [category_of.get(name) for name in model_classes]
    if not any(c is not None for c in category_ids):
        print(f"error: none of the model's classes {model_classes[:10]} is in the dataset's {dataset.class_names[:10]}; "
              f"this model was not trained for this dataset.", file=sys.stderr)
        return 2
    missing = [n for n, c in zip(model_classes, category_ids) if c is None]
    if missing:
        logger.warning("%d model classes are not in the dataset and are ignored: %s", len(missing), missing[:10])
    if not args.no_fuse:
        model.fuse()
    model.to(ctx.device).eval()
    if not args.no_channels_last:
        model.to(memory_format=torch.channels_last)
    img_size = args.img_size or model.config.img_size
    evaluator = COCOEvaluator(EvalDataset(dataset, img_size=img_size, resize=model.config.resize),
                              batch_size=args.batch_size, workers=args.workers,
                              score_threshold=args.score_threshold, iou_threshold=args.iou_threshold,
                              collate_fn=collate_detection, dist=ctx, category_ids=category_ids)
    evaluator.channels_last = not args.no_channels_last
    result = evaluator.evaluate(model, detections_path=args.save_detections if ctx.is_main else None)
    if ctx.is_main:
        logger.info("Data: %s", dataset.report.summary())
        print(f"{model.config.name} on {Path(args.data).name}/{args.split} at {img_size} px "
              f"({result.num_images} images, {result.num_detections} detections):")
        print(result.table())
        if args.out:
            result.save(args.out, {"model": str(args.model), "data": str(args.data), "split": args.split,
                                   "img_size": img_size})
            print(f"Wrote {args.out}")
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
