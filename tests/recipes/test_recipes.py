"""recipes/finetune.py, train.py and evaluate.py run as a user runs them (subprocesses, real files)."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from damo_pipeline.engine import load_training_checkpoint
from damo_pipeline.hub import load_detector

REPO = Path(__file__).resolve().parents[2]
FAST = ["--model", "damoyolo-ns", "--img-size", "128", "--batch-size", "4", "--workers", "0",
        "--set", "score_threshold=0.001", "--set", "tensorboard=false"]


def _run(script, *args, timeout=600, check=True):
    env = {**os.environ, "DAMO_PIPELINE_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, str(REPO / "recipes" / script), *map(str, args)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)
    if check:
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="module")
def finetuned(mini_raccoon, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "raccoon"
    registry = tmp_path_factory.mktemp("registry")
    proc = _run("finetune.py", *FAST, "--data", mini_raccoon, "--epochs", 2, "--out", out, "--pretrained", "none",
                "--push-to-hub", "me/raccoon-ns", "--hub", registry)
    return out, registry, proc


def test_finetune_writes_the_run_and_a_loadable_model_folder(finetuned):
    out, registry, proc = finetuned
    for name in ("last.pt", "best.pt", "metrics.jsonl", "metrics.csv", "results.json", "curves.png",
                 "model/config.json", "model/model.safetensors", "model/README.md"):
        assert (out / name).is_file(), name
    assert "Best validation AP" in proc.stdout
    model = load_detector(out / "model")
    assert model.class_names == ["raccoon"] and model.config.img_size == 128
    best = load_training_checkpoint(out / "best.pt")
    for key, value in model.state_dict().items():  # the hub folder holds the best EMA weights
        assert torch.equal(value, best["model"][key]), key
    config = json.loads((out / "model" / "config.json").read_text())
    results = json.loads((out / "results.json").read_text())
    assert config["class_names"] == ["raccoon"] and results["per_class"].keys() == {"raccoon"}
    assert "raccoon" in (out / "model" / "README.md").read_text()
    pushed = load_detector(registry / "me" / "raccoon-ns")  # --push-to-hub to a local registry folder
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in pushed.state_dict().items())


def test_evaluate_reproduces_the_training_evaluation(finetuned, mini_raccoon, tmp_path):
    out, _, _ = finetuned
    results = json.loads((out / "results.json").read_text())
    proc = _run("evaluate.py", "--model", out, "--data", mini_raccoon, "--split", "val", "--no-fuse",
                "--score-threshold", "0.001", "--batch-size", "4", "--workers", "0", "--out", tmp_path / "eval.json",
                "--save-detections", tmp_path / "dets.json")
    evaluated = json.loads((tmp_path / "eval.json").read_text())
    assert evaluated["num_detections"] == results["num_detections"] > 0
    assert evaluated["metrics"] == pytest.approx(results["metrics"])
    assert evaluated["per_class"] == pytest.approx(results["per_class"])
    assert "| raccoon |" in proc.stdout
    assert len(json.loads((tmp_path / "dets.json").read_text())) == evaluated["num_detections"]
    fused = _run("evaluate.py", "--model", out / "model", "--data", mini_raccoon, "--score-threshold", "0.001",
                 "--workers", "0", "--out", tmp_path / "fused.json")
    assert json.loads((tmp_path / "fused.json").read_text())["metrics"]["AP"] == pytest.approx(
        results["metrics"]["AP"], abs=0.01)
    assert "damoyolo-ns" in fused.stdout


def test_clear_errors(mini_raccoon, tmp_path):
    proc = _run("finetune.py", *FAST, "--data", tmp_path / "nowhere", "--epochs", 1, "--out", tmp_path / "r",
                check=False)
    assert proc.returncode == 2 and "does not exist" in proc.stderr
    proc = _run("finetune.py", *FAST, "--data", mini_raccoon, "--epochs", 1, "--out", tmp_path / "r",
                "--pretrained", tmp_path / "missing.pth", check=False)
    assert proc.returncode == 2 and "missing.pth" in proc.stderr
    proc = _run("finetune.py", *FAST, "--data", mini_raccoon, "--epochs", 1, "--out", tmp_path / "r",
                "--val-split", "test", check=False)
    assert proc.returncode == 2 and "--no-val" in proc.stderr
    proc = _run("evaluate.py", "--model", tmp_path / "nothing", "--data", mini_raccoon, check=False)
    assert proc.returncode == 2 and "nothing" in proc.stderr


@pytest.mark.slow
def test_ctrl_c_then_resume_from_the_command_line(mini_raccoon, tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "DAMO_PIPELINE_OFFLINE": "1"}
    cmd = [sys.executable, str(REPO / "recipes" / "finetune.py"), *FAST, "--data", str(mini_raccoon), "--epochs", "3",
           "--out", str(out), "--pretrained", "none"]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while not (out / "metrics.jsonl").is_file() or not (out / "metrics.jsonl").read_text().strip():
        assert proc.poll() is None and time.time() < deadline, "the first epoch did not finish"
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 130 and "--resume" in stderr
    ckpt = load_training_checkpoint(out / "last.pt")
    assert 1 <= ckpt["epoch"] <= 3
    _run("finetune.py", "--out", out, "--resume", "--workers", "0")
    records = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2, 3]
    assert load_training_checkpoint(out / "last.pt")["iteration"] == 3 * 2


def test_train_recipe_from_scratch(mini_raccoon, tmp_path):
    out = tmp_path / "scratch"
    proc = _run("train.py", *FAST, "--data", mini_raccoon, "--epochs", 1, "--out", out)
    config = json.loads((out / "train_config.json").read_text())
    assert config["train_config"]["optimizer"] == "adamw"  # the official Nano recipe
    assert config["train_config"]["no_aug_epochs"] == 1 and config["train_config"]["warmup_epochs"] == 0.25
    assert load_training_checkpoint(out / "last.pt")["pretrained"] is None
    assert (out / "model" / "model.safetensors").is_file() and "Trained 1 epochs" in proc.stdout


def test_finetune_a_config_json_without_validation(mini_raccoon, tmp_path):
    """``--model`` may be a config file (a NAS result); ``--no-val`` trains without evaluation."""
    from damo_pipeline.models import get_model_config

    config = get_model_config("damoyolo-ns").replace(name="my-nas-net", neck={"depth": 0.33})
    config.to_json(tmp_path / "my_net.json")
    args = [a for a in FAST if a != "damoyolo-ns"]
    args[args.index("--model") + 1:args.index("--model") + 1] = [str(tmp_path / "my_net.json")]
    out = tmp_path / "nas"
    _run("finetune.py", *args, "--data", mini_raccoon, "--epochs", 1, "--out", out, "--no-val")
    model = load_detector(out / "model")
    assert model.config.name == "my-nas-net" and model.class_names == ["raccoon"]
    assert not (out / "best.pt").exists() and not (out / "results.json").exists()
