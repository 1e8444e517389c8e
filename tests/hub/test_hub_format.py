"""The hub format written by save_pretrained, and its model card read back by huggingface_hub."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from huggingface_hub import ModelCard

from damo_pipeline.hub import (CardContext, WeightsNotFoundError, build_model_card, load_folder, read_hub_config,
                               render_card, save_pretrained)
from damo_pipeline.models import build_model


def test_folder_files_and_config(tiny_detector, tmp_path: Path) -> None:
    folder = save_pretrained(tiny_detector, tmp_path / "hub", compute_profile=False)
    assert sorted(p.name for p in folder.iterdir()) == [
        "README.md", "config.json", "configuration.json", "model.safetensors"]  # no temporary files left
    config = json.loads((folder / "config.json").read_text())
    assert config["library_name"] == "damo_pipeline" and config["library_version"]
    assert config["architecture"] == "damoyolo-ns" and config["num_classes"] == 3
    assert config["class_names"] == ["raccoon", "badger", "fox"] and config["img_size"] == 416
    assert config["score_threshold"] == 0.03 and config["iou_threshold"] == 0.65
    assert config["model_config"] == tiny_detector.config.to_dict()
    ms = json.loads((folder / "configuration.json").read_text())
    assert ms["framework"] == "pytorch" and ms["task"] == "image-object-detection"
    assert ms["model"]["type"] == "damo_pipeline"

    from safetensors.torch import load_file

    tensors = load_file(str(folder / "model.safetensors"))
    assert sorted(tensors) == sorted(tiny_detector.state_dict())  # training form, every key
    assert all(torch.equal(tensors[k], v) for k, v in tiny_detector.state_dict().items())


def test_custom_architecture_round_trips_through_config(tmp_path: Path, helpers) -> None:
    config = build_model("damoyolo-ns").config.replace(name="nas-found-ns", num_classes=2,
                                                       neck={"depth": 0.33})
    torch.manual_seed(5)
    model = build_model(config).eval()
    folder = save_pretrained(model, tmp_path / "nas", compute_profile=False)
    loaded = load_folder(folder)
    assert loaded.config.to_dict() == config.to_dict() and helpers.same_weights(loaded, model)
    card = ModelCard.load(folder / "README.md")
    assert "custom-architecture" in card.data.tags


def test_fused_model_is_refused(tiny_detector, tmp_path: Path) -> None:
    tiny_detector.fuse()
    with pytest.raises(ValueError, match="fused"):
        save_pretrained(tiny_detector, tmp_path / "hub", compute_profile=False)
    assert not (tmp_path / "hub").exists()


def test_bad_metric_leaves_no_folder(tiny_detector, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="mAP"):
        save_pretrained(tiny_detector, tmp_path / "hub", metrics={"mAP": float("nan")}, compute_profile=False)
    assert not (tmp_path / "hub").exists()


def test_architecture_only_folder(tmp_path: Path) -> None:
    config = build_model("damoyolo-ns").config.replace(name="nas-candidate-7")
    folder = save_pretrained(config, tmp_path / "arch", extra_card_sections={"Search": "score 938.0"})
    assert not (folder / "model.safetensors").exists()
    assert read_hub_config(folder)["has_weights"] is False
    with pytest.raises(WeightsNotFoundError, match="architecture only"):
        load_folder(folder)
    assert build_model(folder / "config.json").config.name == "nas-candidate-7"
    card = ModelCard.load(folder / "README.md")
    assert "architecture-only" in card.data.tags and "## Search\n\nscore 938.0" in card.text
    assert "GFLOPs (measured" in card.text  # profiled from the config


def test_card_metadata_parses_back(tiny_detector, tmp_path: Path) -> None:
    folder = save_pretrained(
        tiny_detector, tmp_path / "hub", metrics={"mAP": 41.5, "mAP50": 70.25}, dataset="raccoon",
        base_model="damoyolo-ns", metrics_split="validation", repo_id="acme/raccoon-ns",
        training={"epochs": 30, "batch_size": 16, "teacher": "damoyolo-s"},
        extra_card_sections={"Distillation": "Channel-wise feature distillation from `damoyolo-s`."})
    card = ModelCard.load(folder / "README.md")
    data = card.data
    assert data.library_name == "damo_pipeline" and data.pipeline_tag == "object-detection"
    assert data.license == "apache-2.0" and data.datasets == ["raccoon"] and data.base_model == "damoyolo-ns"
    assert {"damo-yolo", "object-detection", "damoyolo-ns", "knowledge-distillation"} <= set(data.tags)
    assert data.model_name == "raccoon-ns"
    results = {r.metric_type: r for r in data.eval_results}
    assert results["mAP"].metric_value == 41.5 and results["mAP50"].metric_value == 70.25
    assert results["mAP"].task_type == "object-detection" and results["mAP"].dataset_name == "raccoon"
    assert results["mAP"].dataset_split == "validation"
    metadata = data.to_dict()
    assert metadata["tasks"] == ["image-object-detection"] and metadata["frameworks"] == ["pytorch"]
    text = card.text
    assert 'model="acme/raccoon-ns"' in text  # the usage snippet
    assert "| mAP@[.5:.95] | 41.5 |" in text and "| teacher | damoyolo-s |" in text
    assert "`raccoon`, `badger`, `fox`" in text and "## Distillation" in text
    assert "parameters (measured, re-parameterised)" in text and "## Citation" in text


def test_card_is_rendered_again_with_the_repo_id(tiny_detector, tmp_path: Path) -> None:
    folder = save_pretrained(tiny_detector, tmp_path / "hub", metrics={"mAP": 10.0}, compute_profile=False)
    assert 'model="path/to/this/folder"' in (folder / "README.md").read_text()
    text = render_card(folder, repo_id="acme/new-name")
    assert 'model="acme/new-name"' in text and ModelCard(text).data.model_name == "new-name"


def test_card_context_rejects_unknown_fields() -> None:
    with pytest.raises(ValueError, match="Unknown card fields"):
        CardContext.from_dict({"model_config": build_model("damoyolo-ns").config.to_dict(), "colour": "red"})
    with pytest.raises(TypeError, match="extra_card_sections"):
        build_model_card(CardContext(model_config=build_model("damoyolo-ns").config.to_dict(),
                                     extra_sections={"Notes": 3}))
