"""Distil a DAMO-YOLO teacher into a student on your dataset (DAMO-YOLO's starred models).

    python recipes/distill.py --teacher runs/teacher-s/model --student damoyolo-t --data path/to/dataset \
        --epochs 50 --out runs/t-distilled [--baseline runs/t-plain] [--push-to-hub ORG/NAME]

The student trains with the normal recipe (the training engine: resume, checkpoints, evaluation, logs) plus
the official feature distillation: on each neck level, a 1x1 align conv maps student channels to teacher
channels, both maps are normalised with batch statistics, and the channel-wise KL divergence of their
spatial softmaxes is added to the loss with a weight decaying from 1.0 to 0.1 over the run; gradients are
clipped at norm 30. The teacher (any trained detector or hub checkpoint with the same class list) stays
frozen in eval mode (fp16 on CUDA). ``--baseline`` names the run of the same student trained without a
teacher under the same budget, so the model card can state the measured gain.
"""
import sys

from damo_pipeline.distill.recipe import DISTILL, add_distill_arguments, build_distillation, card_details
from damo_pipeline.engine.recipe import main

if __name__ == "__main__":
    sys.exit(main(DISTILL, description=__doc__.split("\n\n")[0], parser_hook=add_distill_arguments,
                  plugin_factory=build_distillation, card_details=card_details))
