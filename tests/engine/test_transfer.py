"""Starting a fine-tune from pretrained weights: non-head tensors copied, head re-initialised when classes differ."""
import logging

import pytest
import torch

from damo_pipeline.engine.transfer import load_pretrained_into, transfer_weights
from damo_pipeline.models import CheckpointMismatchError, build_model


def _pretrained(num_classes=80, name="damoyolo-ns"):
    torch.manual_seed(123)
    model = build_model(name, num_classes=num_classes) if num_classes != 80 else build_model(name)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.5)
    return model


def test_other_classes_copy_everything_but_the_head():
    source = _pretrained()
    torch.manual_seed(0)
    model = build_model("damoyolo-ns", class_names=["raccoon"], img_size=320)
    fresh_head = {k: v.clone() for k, v in model.state_dict().items() if k.startswith("head.")}
    report = transfer_weights(model, source.state_dict(), source.class_names, source="coco.pth")
    assert report.head_reinitialised and "80 pretrained classes vs 1" in report.reason
    state, src = model.state_dict(), source.state_dict()
    for key, value in state.items():
        if key.startswith("head."):
            assert torch.equal(value, fresh_head[key]), key
        else:
            assert torch.equal(value, src[key]), key


def test_same_classes_copy_the_head_too():
    source = _pretrained()
    model = build_model("damoyolo-ns")
    report = transfer_weights(model, source.state_dict(), source.class_names)
    assert not report.head_reinitialised
    assert all(torch.equal(v, source.state_dict()[k]) for k, v in model.state_dict().items())


def test_another_architecture_is_refused():
    with pytest.raises(CheckpointMismatchError, match="outside the head"):
        transfer_weights(build_model("damoyolo-t", num_classes=1), _pretrained().state_dict(), ["x"] * 80)


def test_weights_from_a_file_and_missing_weights(tmp_path, monkeypatch, caplog):
    source = _pretrained()
    path = tmp_path / "pretrained.pth"
    torch.save({"model": source.state_dict()}, path)
    model = build_model("damoyolo-ns", class_names=["a", "b"])
    report = load_pretrained_into(model, str(path), explicit=True)
    assert report.head_reinitialised and report.copied > 200
    key = next(k for k in model.state_dict() if k.startswith("backbone.") and k.endswith("weight"))
    assert torch.equal(model.state_dict()[key], source.state_dict()[key])
    with pytest.raises(FileNotFoundError):  # named by the user: an error
        load_pretrained_into(model, str(tmp_path / "missing.pth"), explicit=True)
    monkeypatch.setenv("DAMO_PIPELINE_OFFLINE", "1")
    with caplog.at_level(logging.WARNING):  # the default zoo weights: a warning, then from scratch
        assert load_pretrained_into(model, "damoyolo-ns", explicit=False) is None
    assert "FROM SCRATCH" in caplog.text
    assert load_pretrained_into(model, "none", explicit=True) is None
