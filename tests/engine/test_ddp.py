"""DistributedDataParallel with 2 CPU processes (gloo), launched with torchrun as a user would."""
import os
import subprocess
import sys
from pathlib import Path

import torch

from damo_pipeline.engine import load_training_checkpoint

HERE = Path(__file__).resolve().parent


def test_two_process_gloo_training(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           str(HERE / "ddp_worker.py"), str(tmp_path)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    states = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    assert [s["world_size"] for s in states] == [2, 2] and states[0]["micro_batch"] == 2
    assert states[0]["iteration"] == states[1]["iteration"] == 4  # 8 images / (2 ranks x 2) per epoch, 2 epochs
    # DDP keeps the parameters identical; BatchNorm running statistics stay per process on CPU (gloo has no
    # SyncBatchNorm; upstream also runs DDP with broadcast_buffers=False) and rank 0's are the ones saved.
    for which in ("student", "ema"):
        params = [k for k in states[0][which] if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))]
        assert len(params) > 100
        for key in params:
            assert torch.equal(states[0][which][key], states[1][which][key]), (which, key)
    student = states[0]["student"]
    assert not all(torch.equal(student[k], states[1]["student"][k]) for k in student)  # per-process BN stats
    for key, value in states[0]["ema"].items():  # rank 0's EMA buffers are broadcast before each evaluation
        assert torch.equal(value, states[1]["ema"][key]), key
    assert states[0]["best_ap"] == states[1]["best_ap"]  # the evaluation result reached every rank
    ckpt = load_training_checkpoint(tmp_path / "last.pt")  # written by rank 0 only
    assert ckpt["world_size"] == 2 and ckpt["iteration"] == 4
    assert (tmp_path / "metrics.jsonl").read_text().count("\n") == 2
