"""Worker of the DDP test: ``torchrun --nproc_per_node=2 ddp_worker.py OUT_DIR`` (gloo on CPU)."""
import importlib.util
import sys
from pathlib import Path

import torch

from damo_pipeline.engine import TrainConfig, Trainer
from damo_pipeline.models import build_model

HERE = Path(__file__).resolve().parent


def main(out_dir: str) -> None:
    spec = importlib.util.spec_from_file_location("engine_synthetic", HERE / "synthetic.py")
    synthetic = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(synthetic)
    torch.manual_seed(0)
    model = build_model("damoyolo-ns", class_names=synthetic.CLASS_NAMES, img_size=128)
    cfg = TrainConfig(epochs=2, batch_size=4, warmup_epochs=1.0, no_aug_epochs=1, eval_interval=1, workers=0,
                      tensorboard=False, plots=False, eval_batch_size=2, optimizer="sgd", weight_decay=5e-4)
    trainer = Trainer(model, synthetic.SyntheticBoxes(n=8, size=128, seed=0, random_flip=True), cfg, out_dir,
                      val_dataset=synthetic.SyntheticBoxes(n=3, size=128, seed=1), collate_fn=synthetic.collate,
                      device="cpu")
    result = trainer.fit()
    rank = trainer.dist.rank
    torch.save({"student": model.state_dict(), "ema": trainer.ema.state_dict(), "iteration": result.iteration,
                "world_size": trainer.dist.world_size, "micro_batch": trainer.micro_batch,
                "best_ap": result.best_ap}, Path(out_dir) / f"rank{rank}.pt")
    torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
