"""zero_head_loss: hand-computed tiny case, empty images, no-positive batches, validation."""

from __future__ import annotations

import logging
import math

import pytest
import torch
import torch.distributed as dist

from damo_pipeline.models.losses import bbox2distance, build_zero_head_targets, zero_head_loss

NUM_CLASSES = 2
REG_MAX = 4
GT = torch.tensor([[10.0, 10.0, 40.0, 30.0]])
PRIORS = torch.tensor(
    [
        [16.0, 16.0, 8.0, 8.0],
        [24.0, 16.0, 8.0, 8.0],
        [32.0, 24.0, 8.0, 8.0],
        [8.0, 8.0, 8.0, 8.0],
        [96.0, 96.0, 8.0, 8.0],
    ]
)
# IoU with GT: 1.0, 0.6, 0.5, 0.0, (not a candidate) -> dynamic k = 2 -> positives P0, P1.
DECODED = torch.tensor(
    [
        [10.0, 10.0, 40.0, 30.0],
        [10.0, 10.0, 40.0, 22.0],
        [10.0, 10.0, 40.0, 20.0],
        [100.0, 100.0, 110.0, 110.0],
        [10.0, 10.0, 40.0, 30.0],
    ]
)
PROBS = torch.tensor([[0.1, 0.9], [0.2, 0.7], [0.3, 0.6], [0.05, 0.5], [0.01, 0.02]])


def _bce(p: float, y: float) -> float:
    return -(y * math.log(p) + (1.0 - y) * math.log(1.0 - p))


def _reg_logits(seed: int = 0, n: int = 1, a: int = 5) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, a, 4, REG_MAX + 1, generator=g)


def _empty_target() -> dict:
    return {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.long)}


def test_hand_computed_single_image() -> None:
    reg = _reg_logits().requires_grad_()
    probs = PROBS[None].clone().requires_grad_()
    boxes = DECODED[None].clone().requires_grad_()
    out = zero_head_loss(probs, reg, boxes, PRIORS, [{"boxes": GT, "labels": torch.tensor([1])}], NUM_CLASSES, REG_MAX)

    # QFL: positives P0 (q = 1.0) and P1 (q = 0.6) at class 1; avg_pos = 2.
    qfl = 0.0
    for i, row in enumerate(PROBS.tolist()):
        for c, p in enumerate(row):
            if c == 1 and i in (0, 1):
                q = (1.0, 0.6)[i]
                qfl += _bce(p, q) * abs(q - p) ** 2
            else:
                qfl += _bce(p, 0.0) * p**2
    exp_cls = qfl / 2.0

    # Weights: max probability over classes -> 0.9, 0.7; norm = max(1.6, 1) = 1.6.
    w, norm = (0.9, 0.7), 1.6
    exp_bbox = 2.0 * (w[0] * 0.0 + w[1] * (1.0 - 0.6)) / norm  # GIoU(P1) = IoU = 0.6 (enclosure = GT)

    # DFL targets in stride units (P0 at (2, 2), P1 at (3, 2); GT / 8 = (1.25, 1.25, 5, 3.75)).
    dfl_t = [[0.75, 0.75, 3.0, 1.75], [1.75, 0.75, 2.0, 1.75]]
    logp = torch.log_softmax(reg.detach()[0], dim=-1)
    dfl = 0.0
    for i in range(2):
        for side in range(4):
            t = dfl_t[i][side]
            f = math.floor(t)
            term = -(f + 1 - t) * logp[i, side, f].item()
            if t > f:
                term += -(t - f) * logp[i, side, f + 1].item()
            dfl += w[i] * term
    exp_dfl = 0.25 * dfl / (4.0 * norm)

    assert set(out) == {"total_loss", "loss_cls", "loss_bbox", "loss_dfl"}
    assert all(v.dim() == 0 for v in out.values())
    assert out["loss_cls"].item() == pytest.approx(exp_cls, rel=1e-5)
    assert out["loss_bbox"].item() == pytest.approx(exp_bbox, rel=1e-5)
    assert out["loss_dfl"].item() == pytest.approx(exp_dfl, rel=1e-5)
    assert out["total_loss"].item() == pytest.approx(exp_cls + exp_bbox + exp_dfl, rel=1e-5)

    out["total_loss"].backward()
    assert probs.grad is not None and probs.grad.abs().sum() > 0
    assert reg.grad is not None and reg.grad[0, :2].abs().sum() > 0
    assert reg.grad[0, 2:].abs().sum() == 0  # only positives get DFL gradients
    assert boxes.grad is not None and boxes.grad[0, 1].abs().sum() > 0


def test_targets_layout_and_dfl_clamp() -> None:
    big = torch.tensor([[-100.0, -100.0, 300.0, 300.0]])  # distances far beyond reg_max
    priors = torch.tensor([[16.0, 16.0, 8.0, 8.0]])
    dec = big.clone()[None]
    tgt = [{"boxes": big, "labels": torch.tensor([0])}]
    tg = build_zero_head_targets(torch.full((1, 1, 2), 0.5), dec, priors, tgt, 2, 4)
    assert tg["labels"].tolist() == [0]
    assert int(tg["num_pos"]) == 1
    torch.testing.assert_close(tg["dfl_targets"], torch.full((1, 4), 3.9))
    torch.testing.assert_close(tg["bbox_targets"], big)
    torch.testing.assert_close(tg["label_scores"], torch.tensor([1.0]))
    d = bbox2distance(torch.tensor([[2.0, 2.0]]), torch.tensor([[1.0, 0.5, 5.0, 2.25]]))
    torch.testing.assert_close(d, torch.tensor([[1.0, 1.5, 3.0, 0.25]]))


def test_image_without_boxes_only_contributes_negatives() -> None:
    reg = _reg_logits(n=2)
    probs = torch.stack([PROBS, PROBS])
    boxes = torch.stack([DECODED, DECODED])
    tgt = {"boxes": GT, "labels": torch.tensor([1])}
    both = zero_head_loss(probs, reg, boxes, PRIORS, [tgt, _empty_target()], NUM_CLASSES, REG_MAX)
    single = zero_head_loss(probs[:1], reg[:1], boxes[:1], PRIORS, [tgt], NUM_CLASSES, REG_MAX)
    # Same positives (2) and weights; QFL gains the second image's all-negative term.
    neg = sum(_bce(p, 0.0) * p**2 for p in PROBS.flatten().tolist()) / 2.0
    assert both["loss_cls"].item() == pytest.approx(single["loss_cls"].item() + neg, rel=1e-5)
    assert both["loss_bbox"].item() == pytest.approx(single["loss_bbox"].item(), rel=1e-6)
    assert both["loss_dfl"].item() == pytest.approx(single["loss_dfl"].item(), rel=1e-6)


def test_batch_without_positives(caplog: pytest.LogCaptureFixture) -> None:
    reg = _reg_logits(n=2).requires_grad_()
    probs = torch.stack([PROBS, PROBS]).requires_grad_()
    boxes = torch.stack([DECODED, DECODED])
    far = {"boxes": torch.tensor([[1000.0, 1000.0, 1010.0, 1010.0]]), "labels": torch.tensor([0])}
    with caplog.at_level(logging.INFO, logger="damo_pipeline.models.losses.zero_head_loss"):
        out = zero_head_loss(probs, reg, boxes, PRIORS, [far, _empty_target()], NUM_CLASSES, REG_MAX)
    assert "No positive samples" in caplog.text
    neg = sum(_bce(p, 0.0) * p**2 for p in PROBS.flatten().tolist()) * 2  # avg_pos = max(0, 1) = 1
    assert out["loss_cls"].item() == pytest.approx(neg, rel=1e-5)
    assert out["loss_bbox"].item() == 0.0 and out["loss_dfl"].item() == 0.0
    assert not math.copysign(1.0, out["loss_dfl"].item()) < 0  # +0, not -0
    out["total_loss"].backward()
    assert reg.grad is not None and torch.all(reg.grad == 0)  # graph kept alive, zero gradient
    assert probs.grad is not None and probs.grad.abs().sum() > 0


def test_all_images_empty() -> None:
    out = zero_head_loss(
        PROBS[None], _reg_logits(), DECODED[None], PRIORS, [_empty_target()], NUM_CLASSES, REG_MAX
    )
    assert torch.isfinite(out["total_loss"])
    assert out["loss_bbox"].item() == 0.0


def test_single_process_group_gives_same_values(tmp_path) -> None:
    if not dist.is_available():
        pytest.skip("torch.distributed unavailable")
    tgt = [{"boxes": GT, "labels": torch.tensor([1])}]
    local = zero_head_loss(PROBS[None], _reg_logits(), DECODED[None], PRIORS, tgt, NUM_CLASSES, REG_MAX)
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'pg'}", rank=0, world_size=1)
    try:
        reduced = zero_head_loss(PROBS[None], _reg_logits(), DECODED[None], PRIORS, tgt, NUM_CLASSES, REG_MAX)
    finally:
        dist.destroy_process_group()
    for k in local:
        assert reduced[k].item() == pytest.approx(local[k].item(), rel=1e-7)


def _args(**over):
    args = {
        "cls_probs": PROBS[None],
        "reg_logits": _reg_logits(),
        "decoded_boxes": DECODED[None],
        "priors": PRIORS,
        "targets": [{"boxes": GT, "labels": torch.tensor([1])}],
        "num_classes": NUM_CLASSES,
        "reg_max": REG_MAX,
    }
    args.update(over)
    return args


@pytest.mark.parametrize(
    ("over", "match"),
    [
        ({"targets": [{"boxes": GT, "labels": torch.tensor([2])}]}, r"targets\[0\]\['labels'\]"),
        ({"targets": [{"boxes": GT, "labels": torch.tensor([-1])}]}, r"targets\[0\]\['labels'\]"),
        ({"targets": [{"boxes": GT, "labels": torch.tensor([0, 1])}]}, r"targets\[0\]\['labels'\]"),
        ({"targets": [{"boxes": GT[0], "labels": torch.tensor([1])}]}, r"targets\[0\]\['boxes'\]"),
        ({"targets": [{"boxes": GT}]}, r"targets\[0\]"),
        ({"targets": []}, "targets"),
        ({"reg_logits": torch.zeros(1, 5, 4, REG_MAX)}, "reg_logits"),
        ({"decoded_boxes": torch.zeros(1, 4, 4)}, "decoded_boxes"),
        ({"priors": torch.zeros(5, 2)}, "priors"),
        ({"cls_probs": torch.zeros(1, 5, 7)}, "cls_probs"),
        ({"cls_probs": torch.zeros(5, 2)}, "cls_probs"),
    ],
)
def test_validation_errors_name_the_input(over: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        zero_head_loss(**_args(**over))
