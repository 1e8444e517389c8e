"""Fine-tune a DAMO-YOLO model on your own dataset (COCO JSON, Pascal VOC or YOLO txt).

    python recipes/finetune.py --model damoyolo-t --data path/to/dataset --epochs 50 --out runs/my-model

Starts from the model's COCO-pretrained zoo weights when they can be had (the head is re-initialised when
the dataset's classes differ), otherwise from scratch with a warning; ``--pretrained`` names other weights
(a zoo or hub id, a model folder, a checkpoint file) or ``none``. Class names come from the dataset.

The recipe is the official one (``damo_pipeline.engine.TrainConfig``: SGD + Nesterov for T/S/M/L, AdamW
for Nano, quadratic warm-up, cosine decay, EMA, mosaic/mixup with a final no-augmentation phase) with the
warm-up, no-augmentation phase and evaluation interval scaled to the number of epochs. Every setting can
be changed with ``--config file.yaml`` or ``--set key=value``.

Output in ``--out``: last.pt, best.pt (resumable checkpoints), metrics.jsonl / metrics.csv, results.json
(pycocotools AP, AP50, AP75, APs/m/l and per-class AP of the best epoch), curves.png, and model/ (the hub
folder of the best EMA weights, loadable with ``damo_pipeline.hub.load_detector("runs/my-model/model")``).
``--resume`` continues an interrupted run (Ctrl-C writes last.pt). Several GPUs:
``torchrun --nproc_per_node=4 recipes/finetune.py ...``.
"""
import sys

from damo_pipeline.engine.recipe import Recipe, main

FINETUNE = Recipe(
    name="finetune",
    pretrained_default=True,        # start from the zoo's COCO weights when available
    proportional_schedule=True,     # warm-up / no-aug / eval interval scaled to --epochs
    defaults={"batch_size": 16},    # one GPU (or CPU) friendly; the learning rate scales with it
)

if __name__ == "__main__":
    sys.exit(main(FINETUNE, description=__doc__.split("\n\n")[0]))
