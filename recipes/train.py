"""Train a DAMO-YOLO model from scratch with the full official recipe (e.g. on COCO).

    torchrun --nproc_per_node=8 recipes/train.py --model damoyolo-s --data path/to/coco --out runs/damoyolo-s

The official recipe (``spec/training.md``; ``damo_pipeline.engine.TrainConfig`` defaults): 300 epochs,
global batch 256, SGD momentum 0.9 with Nesterov and weight decay 5e-4 (AdamW with weight decay 0.01
for the Nano models), learning rate 0.01 per 64 images with a 5-epoch quadratic warm-up and cosine decay
to 5 %, EMA 0.9998 with a 2000-iteration ramp, mosaic/mixup augmentation switched off for the last 16
epochs, evaluation every 10 epochs (every epoch at the end). SyncBatchNorm across GPUs. Change anything
with ``--config file.yaml`` or ``--set key=value`` (e.g. ``--set accumulate=4`` for gradient accumulation
on fewer GPUs: same global batch, a quarter of the memory).

A COCO root is read as ``annotations/instances_train2017.json`` + ``train2017/`` (and ``val2017``).
Output as recipes/finetune.py: last.pt, best.pt, metrics.jsonl, results.json, curves.png, model/.
"""
import sys

from damo_pipeline.engine.recipe import Recipe, main

TRAIN = Recipe(
    name="train",
    pretrained_default=False,       # from scratch, as the official training
    proportional_schedule=False,    # official warm-up (5), no-aug (16) and eval interval (10)
    defaults={},                    # every value is the official one (TrainConfig.for_model)
)

if __name__ == "__main__":
    sys.exit(main(TRAIN, description=__doc__.split("\n\n")[0]))
