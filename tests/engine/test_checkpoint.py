"""Atomic checkpoint writes, safe reads and RNG state capture."""
import random

import numpy as np
import pytest
import torch

from damo_pipeline.engine import load_training_checkpoint, save_atomic
from damo_pipeline.engine.checkpoint import CHECKPOINT_FORMAT, capture_rng_state, restore_rng_state


class _Unpicklable:
    def __reduce__(self):
        raise RuntimeError("simulated failure while writing")


def test_failed_save_keeps_the_old_file(tmp_path):
    path = tmp_path / "last.pt"
    save_atomic({"format": CHECKPOINT_FORMAT, "epoch": 1, "w": torch.ones(3)}, path)
    with pytest.raises(RuntimeError, match="simulated failure"):
        save_atomic({"format": CHECKPOINT_FORMAT, "epoch": 2, "w": torch.zeros(1000), "bad": _Unpicklable()}, path)
    assert load_training_checkpoint(path)["epoch"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]  # no temporary file left behind


def test_rng_round_trip_through_weights_only(tmp_path):
    random.seed(1)
    np.random.seed(2)
    torch.manual_seed(3)
    state = capture_rng_state()
    expected = (random.random(), np.random.random(), torch.rand(1).item())
    save_atomic({"format": CHECKPOINT_FORMAT, "rng": state}, tmp_path / "c.pt")
    loaded = load_training_checkpoint(tmp_path / "c.pt")  # weights_only=True inside
    random.random(), np.random.random(), torch.rand(5)
    restore_rng_state(loaded["rng"])
    assert (random.random(), np.random.random(), torch.rand(1).item()) == expected


def test_foreign_files_are_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_training_checkpoint(tmp_path / "nope.pt")
    torch.save({"model": {"w": torch.ones(1)}}, tmp_path / "plain.pt")
    with pytest.raises(ValueError, match="--pretrained"):
        load_training_checkpoint(tmp_path / "plain.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="Refused to load|not a readable checkpoint"):
        load_training_checkpoint(tmp_path / "junk.pt")
