"""Search a DAMO-YOLO backbone for your device and budget (MAE-NAS), then train it.

    python recipes/nas.py --family res --budget-latency-ms 80 --device cpu --out runs/my-nas

Zero-shot and data-free: candidates are scored by the closed-form MAE-NAS entropy of their features, so a
search takes minutes on a laptop CPU. Budgets apply to the deployed detector (fused, batch 1, --img-size):
latency on --device (a layer-timing table measured on that device, calibrated on whole detectors, and the
finalists timed end to end), GFLOPs, parameters and TinyNAS layers. Output in --out: structure.json,
config.json (``recipes/finetune.py --model runs/my-nas/config.json --data ...`` trains it), pareto.json,
pareto.png and report.md. ``--resume`` continues an interrupted search (Ctrl-C saves it). See docs/nas.md.
"""
import sys

from damo_pipeline.nas.recipe import main

if __name__ == "__main__":
    sys.exit(main())
