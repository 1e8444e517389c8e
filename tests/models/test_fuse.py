"""Deploy form: model.fuse() folds RepConv branches and BatchNorm; outputs stay equivalent."""
import pytest
import torch
from torch import nn

from damo_pipeline.models import list_models
from damo_pipeline.models.layers import RepConv


@pytest.mark.parametrize("name", list_models())
def test_fused_model_matches_training_form(name, deterministic_model, detweights):
    model = deterministic_model(name)
    x = detweights.fixed_inputs()
    with torch.no_grad():
        scores, boxes = model(x)
        model.fuse()
        fused_scores, fused_boxes = model(x)
    assert model.is_fused
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    assert all(m.is_fused for m in model.modules() if isinstance(m, RepConv))
    # float32 re-association only; the official fusion drifts ~2e-4 in scores and ~0.1 px on M and L
    assert (fused_scores - scores).abs().max() < 1e-3
    assert (fused_boxes - boxes).abs().max() < 0.15


def test_repconv_fusion_is_exact_in_float64():
    torch.manual_seed(0)
    for stride in (1, 2):
        conv = RepConv(8, 16, 3, stride, act="relu").double()
        for bn in (conv.rbr_dense.bn, conv.rbr_1x1.bn):
            bn.running_mean.uniform_(-1, 1)
            bn.running_var.uniform_(0.5, 2)
            bn.weight.data.uniform_(0.5, 1.5)
            bn.bias.data.uniform_(-0.5, 0.5)
        conv.eval()
        x = torch.randn(2, 8, 15, 17, dtype=torch.float64)
        expected = conv(x)
        conv.fuse()
        assert set(conv.state_dict()) == {"rbr_reparam.weight", "rbr_reparam.bias"}
        assert torch.allclose(conv(x), expected, atol=1e-12)
        conv.fuse()  # idempotent


def test_fuse_returns_model_and_is_idempotent(deterministic_model, detweights):
    model = deterministic_model("damoyolo-ns")
    assert model.fuse() is model
    with torch.no_grad():
        a = model(detweights.fixed_inputs())[0]
        model.fuse()
        b = model(detweights.fixed_inputs())[0]
    assert torch.equal(a, b)
