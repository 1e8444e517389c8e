"""Parameter groups (weight-decay rules) and the learning-rate schedule against the official formulas."""
import math

import pytest
import torch
from torch import nn

from damo_pipeline.engine import LRSchedule, TrainConfig, build_optimizer, param_groups
from damo_pipeline.models import build_model
from damo_pipeline.models.heads.zero_head import Scale


def _decay_of(groups):
    return {id(p): g["weight_decay"] for g in groups for p in g["params"]}


@pytest.mark.parametrize("name", ["damoyolo-t", "damoyolo-ns"])
def test_weight_decay_rules(name):
    model = build_model(name)
    groups = param_groups([model], 5e-4, "per_tensor")
    decay = _decay_of(groups)
    params = [p for p in model.parameters() if p.requires_grad]
    assert len(groups) == len(params) and all(len(g["params"]) == 1 for g in groups)
    assert set(decay) == {id(p) for p in params}
    n_norm = n_bias = n_scale = 0
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            assert decay[id(module.weight)] == 0 and decay[id(module.bias)] == 0
            n_norm += 1
        elif isinstance(module, nn.Conv2d):
            assert decay[id(module.weight)] == 5e-4
            if module.bias is not None:
                assert decay[id(module.bias)] == 0
                n_bias += 1
        elif isinstance(module, Scale):
            assert decay[id(module.scale)] == 5e-4  # the head's Scale scalars are decayed (official)
            n_scale += 1
    assert n_norm > 10 and n_bias >= 6 and n_scale == 3


def test_frozen_and_extra_modules():
    model = build_model("damoyolo-ns")
    model.backbone.requires_grad_(False)
    align = nn.Conv2d(4, 8, 1)
    decay = _decay_of(param_groups([model, align], 0.01))
    assert all(id(p) not in decay for p in model.backbone.parameters())
    assert decay[id(align.weight)] == 0.01 and decay[id(align.bias)] == 0


def test_optimizer_kinds_and_merged_groups_give_identical_updates():
    torch.manual_seed(0)
    reference = build_model("damoyolo-ns", num_classes=2, img_size=128)
    x = torch.rand(2, 3, 128, 128) * 255
    targets = [{"boxes": torch.tensor([[10.0, 20, 90, 100]]), "labels": torch.tensor([1])}] * 2
    states = []
    for mode in ("per_tensor", "merged"):
        model = build_model("damoyolo-ns", num_classes=2, img_size=128)
        model.load_state_dict(reference.state_dict())
        model.train()
        cfg = TrainConfig(param_groups=mode, batch_size=64)
        opt = build_optimizer(cfg, [model])
        assert isinstance(opt, torch.optim.SGD) and opt.defaults["nesterov"] and opt.defaults["momentum"] == 0.9
        for _ in range(2):
            opt.zero_grad()
            model(x, targets)["total_loss"].backward()
            opt.step()
        states.append(model.state_dict())
        assert len(opt.param_groups) == (2 if mode == "merged" else len(list(model.parameters())))
    for key in states[0]:
        assert torch.equal(states[0][key], states[1][key]), key
    adamw = build_optimizer(TrainConfig(optimizer="adamw", weight_decay=0.01), [reference])
    assert isinstance(adamw, torch.optim.AdamW)
    with pytest.raises(ValueError, match="Unknown optimizer"):
        build_optimizer(TrainConfig(optimizer="lion"), [reference])


def test_official_coco_schedule_values():
    """COCO train2017: 463 iterations/epoch, 138,900 total, 2,315 warm-up, no-aug from 131,492 (training.md §1)."""
    sched = LRSchedule.from_config(TrainConfig(), iters_per_epoch=463)
    assert (sched.total_iters, sched.warmup_iters, sched.no_aug_iters) == (138900, 2315, 7408)
    base, final = 0.04, 0.002
    assert sched(0) == 0.0
    assert sched(1000) == pytest.approx(base * (1000 / 2315) ** 2)
    assert sched(2314) == pytest.approx(base * (2314 / 2315) ** 2)
    assert sched(2315) == pytest.approx(base)  # cosine starts at the peak
    span = 138900 - 2315 - 7408
    assert sched(2315 + span // 2) == pytest.approx(final + 0.5 * (base - final) * (1 + math.cos(math.pi * (span // 2) / span)))
    assert sched(2315 + span // 2) == pytest.approx((base + final) / 2, rel=1e-4)
    assert sched(131491) == pytest.approx(final + 0.5 * (base - final) * (1 + math.cos(math.pi * (span - 1) / span)))
    assert sched(131492) == final and sched(138899) == final
    nano = LRSchedule.from_config(TrainConfig(lr_per_image=0.001 / 64), iters_per_epoch=463)
    assert nano.base_lr == pytest.approx(0.004) and nano.final_lr == pytest.approx(0.0002)


def test_warmup_start_and_min_iters():
    sched = LRSchedule.from_config(TrainConfig(epochs=10, no_aug_epochs=2, warmup_epochs=1, warmup_start_lr=0.001,
                                               warmup_min_iters=20), iters_per_epoch=5)
    assert sched.warmup_iters == 20
    assert sched(0) == pytest.approx(0.001)
    assert sched(10) == pytest.approx((0.04 - 0.001) * 0.25 + 0.001)
