"""What ``recipes/distill.py`` adds to the training recipe: teacher arguments and the distillation plugin."""
from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any, Dict, List, Optional

from ..engine.hooks import LossPlugin
from ..engine.recipe import Recipe
from ..models import Detector
from .plugin import DISTILL_GRAD_CLIP, FeatureDistillation

logger = logging.getLogger(__name__)

DISTILL = Recipe(
    name="distill",
    pretrained_default=False,          # upstream distils into a student trained from scratch
    proportional_schedule=True,        # warm-up / no-aug / eval interval scaled to --epochs
    defaults={"batch_size": 16, "clip_grad_norm": DISTILL_GRAD_CLIP},
)


def add_distill_arguments(parser: argparse.ArgumentParser) -> None:
    """``--teacher`` (required), ``--student`` (alias of ``--model``), the loss options and ``--baseline``."""
    parser.add_argument("--teacher", help="the teacher: zoo id with --teacher-checkpoint, hub id, model folder "
                                          "or checkpoint file (a detector trained on the same classes)")
    parser.add_argument("--teacher-checkpoint", help="weights for a zoo-id --teacher")
    parser.add_argument("--student", dest="model", help="the student architecture (zoo id or config .json); "
                                                        "same as --model")
    parser.add_argument("--distill-weight", type=float, default=1.0, help="feature loss weight (official 1.0)")
    parser.add_argument("--distill-final-weight", type=float, default=0.1,
                        help="the cosine weight schedule's value at the end of the run (official 0.1)")
    parser.add_argument("--baseline", help="run folder of the same student trained without a teacher under the same "
                                           "budget: its best AP goes into the model card as the measured gain")


def load_teacher(spec: str, checkpoint: Optional[str] = None) -> Detector:
    """Load the teacher with the hub resolver; a clear error when it is missing or not a detector."""
    from ..hub import load_detector

    if not spec:
        raise ValueError("--teacher is required: a trained detector (model folder, checkpoint file or hub id).")
    return load_detector(spec, checkpoint)


def build_distillation(model: Detector, args: argparse.Namespace) -> List[LossPlugin]:
    """The loss plugins of a distillation run (called by the recipe once the student is built)."""
    teacher = load_teacher(args.teacher, getattr(args, "teacher_checkpoint", None))
    plugin = FeatureDistillation(teacher, model, loss_weight=args.distill_weight,
                                 final_weight=args.distill_final_weight)
    logger.info("Distilling %s (neck %s) into %s (neck %s)", teacher.config.name, teacher.neck.out_channels,
                model.config.name, model.neck.out_channels)
    return [plugin]


def card_details(args: argparse.Namespace) -> Dict[str, Any]:
    """Training details for the model card: the teacher and, with ``--baseline``, the baseline's AP."""
    details: Dict[str, Any] = {"teacher": str(args.teacher), "distillation": "CWD on neck features "
                               f"(weight {args.distill_weight} -> {args.distill_weight * args.distill_final_weight}, "
                               f"grad clip {DISTILL_GRAD_CLIP})"}
    if getattr(args, "baseline", None):
        ap = baseline_ap(args.baseline)
        if ap is not None:
            details["baseline_ap"] = ap
    return details


def baseline_ap(run: str) -> Optional[float]:
    """Best validation AP (0..1) of a finished run folder, from its results.json."""
    path = Path(run) / "results.json"
    if not path.is_file():
        raise FileNotFoundError(f"--baseline {run!r} has no results.json: give the run folder of a finished "
                                "training of the same student.")
    data = json.loads(path.read_text())
    metrics = data.get("metrics", data)
    value = metrics.get("AP")
    return float(value) if value is not None else None
