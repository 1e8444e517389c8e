"""The distillation loss against the official formula, on hand-made features."""
import math

import numpy as np
import pytest
import torch

from damo_pipeline.distill.feature_loss import (
    FeatureDistillationLoss,
    batch_normalize,
    channel_wise_divergence,
    distill_weight,
)


def _reference_cwd(s: np.ndarray, t: np.ndarray, tau: float = 1.0) -> float:
    """The spec's formula in float64 NumPy, written independently of the implementation."""
    n, c, h, w = s.shape
    total = 0.0
    for i in range(n):
        for j in range(c):
            ts = t[i, j].reshape(-1) / tau
            ss = s[i, j].reshape(-1) / tau
            p_t = np.exp(ts - ts.max()) / np.exp(ts - ts.max()).sum()
            log_p_t = ts - ts.max() - np.log(np.exp(ts - ts.max()).sum())
            log_p_s = ss - ss.max() - np.log(np.exp(ss - ss.max()).sum())
            total += float((p_t * (log_p_t - log_p_s)).sum())
    return tau ** 2 * total / (n * c)


def _reference_bn(x: np.ndarray, eps: float = 1e-5) -> np.ndarray:
    mean = x.mean(axis=(0, 2, 3), keepdims=True)
    var = x.var(axis=(0, 2, 3), keepdims=True)  # biased, as BatchNorm normalises in train mode
    return (x - mean) / np.sqrt(var + eps)


def test_cwd_hand_computed_two_positions():
    # one channel, two positions: teacher softmax [e/(1+e), 1/(1+e)], student uniform
    t = torch.tensor([[[[1.0, 0.0]]]])
    s = torch.zeros(1, 1, 1, 2)
    p = math.e / (1 + math.e)
    expected = p * math.log(p / 0.5) + (1 - p) * math.log((1 - p) / 0.5)
    assert channel_wise_divergence(s, t).item() == pytest.approx(expected, rel=1e-6)
    assert channel_wise_divergence(t, t).item() == pytest.approx(0.0, abs=1e-7)


def test_cwd_temperature_matches_formula():
    g = torch.Generator().manual_seed(0)
    s, t = torch.randn(2, 3, 4, 5, generator=g), torch.randn(2, 3, 4, 5, generator=g)
    for tau in (1.0, 2.0, 4.0):
        ref = _reference_cwd(s.double().numpy(), t.double().numpy(), tau)
        assert channel_wise_divergence(s, t, tau).item() == pytest.approx(ref, rel=1e-5)


def test_batch_normalize_uses_batch_statistics():
    x = torch.randn(4, 3, 5, 6, generator=torch.Generator().manual_seed(1)) * 3 + 2
    np.testing.assert_allclose(batch_normalize(x).numpy(), _reference_bn(x.double().numpy()), atol=1e-5)


@pytest.mark.parametrize("student_channels,teacher_channels", [([64, 128, 256], [128, 256, 512]), ([8, 16, 32], [8, 16, 32])])
def test_feature_loss_matches_official_formula(student_channels, teacher_channels):
    """Align (1x1 conv with bias) -> BN on batch stats for both -> CWD, summed over levels."""
    g = torch.Generator().manual_seed(2)
    sizes = [(8, 10), (4, 5), (2, 3)]
    student = [torch.randn(2, c, h, w, generator=g) for c, (h, w) in zip(student_channels, sizes)]
    teacher = [torch.randn(2, c, h, w, generator=g) * 2 + 0.5 for c, (h, w) in zip(teacher_channels, sizes)]
    loss_fn = FeatureDistillationLoss(student_channels, teacher_channels)
    assert [a.weight.shape[:2] for a in loss_fn.align] == [torch.Size([t, s]) for s, t in zip(student_channels, teacher_channels)]
    expected = 0.0
    for align, s, t in zip(loss_fn.align, student, teacher):
        w = align.weight.detach().double().numpy()[:, :, 0, 0]
        b = align.bias.detach().double().numpy()
        aligned = np.einsum("oc,nchw->nohw", w, s.double().numpy()) + b[None, :, None, None]
        expected += _reference_cwd(_reference_bn(aligned), _reference_bn(t.double().numpy()))
    loss = loss_fn(student, teacher)
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in loss_fn.parameters())


def test_feature_loss_errors():
    loss_fn = FeatureDistillationLoss([4], [8])
    with pytest.raises(ValueError, match="same input size"):
        loss_fn([torch.zeros(1, 4, 4, 4)], [torch.zeros(1, 8, 2, 2)])
    with pytest.raises(ValueError, match="feature levels"):
        FeatureDistillationLoss([4, 8], [8])


def test_distill_weight_schedule():
    assert distill_weight(0, 100) == pytest.approx(1.0)
    assert distill_weight(50, 100) == pytest.approx(0.55)
    assert distill_weight(100, 100) == pytest.approx(0.1)
    assert distill_weight(25, 100) == pytest.approx(1 - 0.9 * (1 - math.cos(math.pi / 4)) / 2)
    weights = [distill_weight(i, 100) for i in range(101)]
    assert all(a >= b for a, b in zip(weights, weights[1:]))
