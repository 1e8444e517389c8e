"""EMA: the 2000-iteration ramp and the update over every floating-point state entry."""
import math

import pytest
import torch

from damo_pipeline.engine import ModelEMA
from damo_pipeline.models import build_model


def test_momentum_ramp():
    ema = ModelEMA(torch.nn.Linear(2, 2))
    assert ema.momentum(0) == 0.0
    assert ema.momentum(2000) == pytest.approx(0.9998 * (1 - math.exp(-1)))
    assert ema.momentum(10 ** 6) == pytest.approx(0.9998)


def test_update_blends_parameters_and_buffers():
    torch.manual_seed(0)
    model = build_model("damoyolo-ns", num_classes=2, img_size=128)
    ema = ModelEMA(model)
    assert not ema.module.training and not any(p.requires_grad for p in ema.module.parameters())
    before = {k: v.clone() for k, v in ema.state_dict().items()}
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p))
        model.train()(torch.rand(2, 3, 128, 128) * 255)  # moves the BN running statistics
    m = ema.update(model, 500)
    assert m == pytest.approx(0.9998 * (1 - math.exp(-0.25)))
    model_state = model.state_dict()
    checked = 0
    for key, value in ema.state_dict().items():
        if value.dtype.is_floating_point:
            expected = m * before[key] + (1 - m) * model_state[key]
            torch.testing.assert_close(value, expected, rtol=1e-6, atol=1e-6)
            checked += 1
        else:  # num_batches_tracked keeps its value
            assert torch.equal(value, before[key])
    assert any("running_var" in k for k in before) and any("integral.project" in k for k in before)
    assert checked == sum(v.dtype.is_floating_point for v in before.values())


def test_first_update_copies_the_model():
    model = torch.nn.Linear(3, 3)
    ema = ModelEMA(model)
    with torch.no_grad():
        model.weight.fill_(2.0)
    ema.update(model, 0)
    assert torch.equal(ema.module.weight, model.weight)
