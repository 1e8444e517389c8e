"""Publishing: the local-registry round trip, dry runs for both hubs, and the hub_upload command line."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from damo_pipeline.hub import load_detector, plan_push, push_to_hub, save_pretrained
from damo_pipeline.models import Detector, build_model
from hub_upload.cli import main as hub_upload_main

SECRET = "hf_SECRETtoken1234567890"


@pytest.fixture
def hub_folder(tiny_detector: Detector, tmp_path: Path) -> Path:
    return save_pretrained(tiny_detector, tmp_path / "run" / "hub", metrics={"mAP": 12.0}, dataset="raccoon",
                           compute_profile=False)


def test_registry_round_trip_gives_identical_detections(hub_folder, tiny_detector, tmp_path, helpers,
                                                        sample_input) -> None:
    registry = tmp_path / "registry"
    target = push_to_hub(hub_folder, "acme/raccoon-ns", hub=registry)
    assert Path(target) == registry / "acme" / "raccoon-ns"
    assert 'model="acme/raccoon-ns"' in (Path(target) / "README.md").read_text()  # card names its repo id
    assert 'model="path/to/this/folder"' in (hub_folder / "README.md").read_text()  # source left untouched
    direct = load_detector(hub_folder)
    loaded = load_detector(target)
    assert helpers.same_weights(loaded, tiny_detector)
    assert helpers.same_outputs(loaded, direct, sample_input)
    assert helpers.same_outputs(loaded, tiny_detector, sample_input)
    assert not [p for p in hub_folder.parent.iterdir() if p.name.startswith(".push-")]  # staging removed

    torch.manual_seed(9)
    retrained = build_model("damoyolo-ns", class_names=helpers.class_names)
    save_pretrained(retrained, hub_folder, compute_profile=False)
    push_to_hub(hub_folder, "acme/raccoon-ns", hub=registry)  # replaces the published version atomically
    assert helpers.same_weights(load_detector(target), retrained)
    assert sorted(p.name for p in (registry / "acme").iterdir()) == ["raccoon-ns"]


@pytest.mark.parametrize("hub, display, url", [
    ("hf", "Hugging Face Hub", "https://huggingface.co/acme/raccoon-ns"),
    ("modelscope", "ModelScope", "https://modelscope.cn/models/acme/raccoon-ns"),
])
def test_dry_run_describes_files_and_commit(hub_folder, hub, display, url, capsys) -> None:
    rc = hub_upload_main(["push", str(hub_folder), "--repo-id", "acme/raccoon-ns", "--hub", hub, "--dry-run",
                          "--private", "--token", SECRET])
    out = capsys.readouterr()
    assert rc == 0, out.err
    assert "DRY RUN" in out.out and f"Would create the {display} model repo acme/raccoon-ns ({url})" in out.out
    assert "private" in out.out
    assert "Would commit 4 files to acme/raccoon-ns: 'Upload damoyolo-ns (3 classes) with damo_pipeline" in out.out
    for name in ("README.md", "config.json", "configuration.json", "model.safetensors"):
        assert f"  {name} " in out.out
    weights = (hub_folder / "model.safetensors")
    assert f"{weights.stat().st_size:,d} bytes" in out.out
    assert SECRET not in out.out + out.err
    assert push_to_hub(hub_folder, "acme/raccoon-ns", hub=hub, dry_run=True, token=SECRET) == url


def test_plan_lists_the_staged_card(hub_folder) -> None:
    with plan_push(hub_folder, "acme/raccoon-ns", hub="hf") as plan:
        names = [name for name, _, _ in plan.files]
        assert names == ["README.md", "config.json", "configuration.json", "model.safetensors"]
        assert 'model="acme/raccoon-ns"' in (plan.staged / "README.md").read_text()
        staged = plan.staged
    assert not staged.exists()


def test_bad_inputs_exit_2(hub_folder, tmp_path, capsys) -> None:
    assert hub_upload_main(["push", str(hub_folder), "--repo-id", "not a repo", "--dry-run"]) == 2
    assert "org/name" in capsys.readouterr().err
    assert hub_upload_main(["push", str(tmp_path / "missing"), "--repo-id", "acme/x", "--dry-run"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_push_a_trainer_run_folder_into_a_registry(tiny_detector, tmp_path, helpers, capsys) -> None:
    run = tmp_path / "runs" / "raccoon"
    run.mkdir(parents=True)
    torch.save({"model": tiny_detector.state_dict(), "model_config": tiny_detector.config.to_dict(),
                "class_names": helpers.class_names, "epoch": 30,
                "train_config": {"epochs": 30, "batch_size": 8, "lr": 0.01, "data": "/data/raccoon/train.json",
                                 "some_nested": {"ignored": True}}}, run / "best.pt")
    records = [{"epoch": 10, "total_loss": 3.2, "AP": 0.301, "AP50": 0.62},
               {"epoch": 20, "total_loss": 2.9, "AP": 0.352, "AP50": 0.70},
               {"epoch": 30, "total_loss": 2.8, "AP": 0.348, "AP50": 0.71}]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    registry = tmp_path / "registry"
    rc = hub_upload_main(["push", str(run), "--repo-id", "acme/raccoon", "--hub", str(registry), "--no-profile"])
    assert rc == 0, capsys.readouterr().err
    published = registry / "acme" / "raccoon"
    assert helpers.same_weights(load_detector(published), tiny_detector)
    card = (published / "README.md").read_text()
    assert "| AP@[.5:.95] | 0.352 |" in card and "| AP@.5 | 0.7 |" in card  # the best evaluated epoch
    assert "Trained on **raccoon**" in card and "| batch_size | 8 |" in card and "ignored" not in card
    assert (run / "hub" / "config.json").is_file()  # the hub folder is built inside the run by default


def test_convert_official_release_file(tmp_path, helpers, capsys) -> None:
    torch.manual_seed(2)
    official = build_model("damoyolo-ns")
    release = tmp_path / "damoyolo_nano_small.pth"
    torch.save({"epoch": 300, "model": official.state_dict(), "optimizer": {"lr": 0.1}}, release)
    out = tmp_path / "converted"
    rc = hub_upload_main(["convert-official", str(release), "--model", "damoyolo-ns", "--out", str(out),
                          "--no-profile"])
    assert rc == 0, capsys.readouterr().err
    assert helpers.same_weights(load_detector(out), official)
    from huggingface_hub import ModelCard

    card = ModelCard.load(out / "README.md")
    assert card.data.eval_results[0].metric_value == 32.3 and card.data.eval_results[0].dataset_split == "val2017"
    assert "# DAMO-YOLO-Ns" in card.text and "4.08 ms on Intel 8163 CPU" in card.text
    import hashlib

    assert hashlib.sha256(release.read_bytes()).hexdigest() in card.text

    wrong = tmp_path / "s.pth"
    torch.save({"model": build_model("damoyolo-nm").state_dict()}, wrong)
    assert hub_upload_main(["convert-official", str(wrong), "--model", "damoyolo-ns", "--out",
                            str(tmp_path / "bad"), "--no-profile"]) == 2
    assert "damoyolo-nm" in capsys.readouterr().err  # the mismatch names what the file really is


def test_python_dash_m_entry_point(hub_folder, tmp_path) -> None:
    result = subprocess.run([sys.executable, "-m", "hub_upload", "push", str(hub_folder), "--repo-id", "acme/x",
                             "--hub", "modelscope", "--dry-run"], capture_output=True, text=True, timeout=120,
                            cwd=Path(__file__).resolve().parents[2])
    assert result.returncode == 0, result.stderr
    assert "Would create the ModelScope model repo acme/x" in result.stdout
