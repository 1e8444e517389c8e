"""Distillation plugged into the training engine: teacher frozen, loss logged and falling, resume, the card."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from damo_pipeline.distill import FeatureDistillation, FrozenTeacher
from damo_pipeline.engine import TrainConfig, Trainer
from damo_pipeline.hub import load_detector, save_pretrained
from damo_pipeline.models import build_model

REPO = Path(__file__).resolve().parents[2]


def _synthetic(n, size, seed=0):
    """Images with bright squares as objects of 2 classes (learnable in a few steps)."""
    g = torch.Generator().manual_seed(seed)
    samples = []
    for i in range(n):
        img = torch.full((3, size, size), 40.0)
        boxes, labels = [], []
        for k in range(2):
            x, y = torch.randint(0, size - 40, (2,), generator=g).tolist()
            w, h = torch.randint(16, 40, (2,), generator=g).tolist()
            img[k, y:y + h, x:x + w] = 230.0
            boxes.append([x, y, x + w, y + h])
            labels.append(k)
        samples.append((img, {"boxes": torch.tensor(boxes, dtype=torch.float32), "labels": torch.tensor(labels),
                              "image_id": i, "orig_size": (size, size)}))
    return samples


def _collate(batch):
    return torch.stack([b[0] for b in batch]), [b[1] for b in batch]


def _cfg(**kw):
    return TrainConfig(**{"epochs": 3, "batch_size": 4, "warmup_epochs": 1, "no_aug_epochs": 0, "eval_interval": 100,
                          "workers": 0, "tensorboard": False, "plots": False, "lr_per_image": 0.00025,
                          "clip_grad_norm": 30.0, **kw})


def test_teacher_stays_frozen_and_in_eval_mode(tmp_path):
    torch.manual_seed(0)
    names = ["a", "b"]
    teacher = build_model("damoyolo-s", class_names=names, img_size=64)
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    student = build_model("damoyolo-ns", class_names=names, img_size=64)
    plugin = FeatureDistillation(teacher, student)
    result = Trainer(student, _synthetic(8, 64), _cfg(epochs=2), tmp_path / "run", collate_fn=_collate,
                     plugins=[plugin]).fit()
    assert not teacher.training
    assert all(not p.requires_grad for p in teacher.parameters())
    assert all(torch.equal(before[k], v) for k, v in teacher.state_dict().items())  # BN stats untouched too
    losses = [r["loss_distill"] for r in result.records]
    assert all(v > 0 for v in losses)
    ckpt = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert set(ckpt["plugins"]["distill"]) == {f"feature_loss.align.{i}.{p}" for i in range(3) for p in ("weight", "bias")}
    assert not any(k.startswith("teacher") for k in ckpt["plugins"]["distill"])


def test_distillation_loss_falls_and_is_logged(tmp_path):
    torch.manual_seed(0)
    names = ["a", "b"]
    teacher = build_model("damoyolo-t", class_names=names, img_size=64)
    student = build_model("damoyolo-ns", class_names=names, img_size=64)
    result = Trainer(student, _synthetic(16, 64), _cfg(epochs=4), tmp_path / "run", collate_fn=_collate,
                     plugins=[FeatureDistillation(teacher, student)]).fit()
    records = result.records
    assert "loss_distill" in records[0] and "loss_cls" in records[0]
    assert records[-1]["loss_distill"] < records[0]["loss_distill"]
    assert records[-1]["total_loss"] < records[0]["total_loss"]
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert "loss_distill" in json.loads(lines[0])


def test_unusable_pairs_are_refused():
    with pytest.raises(ValueError, match="different class lists"):
        FeatureDistillation(build_model("damoyolo-s", class_names=["a", "b"]), build_model("damoyolo-t", class_names=["a", "c"]))
    with pytest.raises(TypeError, match="Detector"):
        FeatureDistillation(torch.nn.Conv2d(3, 3, 1), build_model("damoyolo-t"))


def test_frozen_teacher_features_have_no_graph():
    teacher = FrozenTeacher(build_model("damoyolo-ns"))
    feats = teacher.features(torch.zeros(1, 3, 64, 64))
    assert [f.shape[1] for f in feats] == [40, 80, 160] and not any(f.requires_grad for f in feats)


def _run(*args, timeout=900):
    env = {**os.environ, "DAMO_PIPELINE_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, str(REPO / "recipes" / "distill.py"), *map(str, args)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def test_distill_recipe_end_to_end_with_resume_and_card(mini_raccoon, tmp_path):
    torch.manual_seed(0)
    teacher_dir = save_pretrained(build_model("damoyolo-t", class_names=["raccoon"], img_size=128), tmp_path / "teacher")
    common = ["--teacher", teacher_dir, "--student", "damoyolo-ns", "--data", mini_raccoon, "--img-size", 128,
              "--batch-size", 4, "--workers", 0, "--set", "tensorboard=false", "--set", "score_threshold=0.001"]
    out = tmp_path / "run"
    _run(*common, "--epochs", 1, "--out", out)
    _run(*common, "--epochs", 2, "--out", out, "--resume")      # continue the same run for one more epoch
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2] and all("loss_distill" in r for r in records)
    card = (out / "model" / "README.md").read_text()
    assert str(teacher_dir) in card
    assert load_detector(out / "model").class_names == ["raccoon"]
