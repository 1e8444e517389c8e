"""TrainConfig: official defaults, family defaults, overrides from strings and files."""
import json

import pytest

from damo_pipeline.engine import TrainConfig
from damo_pipeline.engine.config import parse_override
from damo_pipeline.models import get_model_config


def test_defaults_are_the_official_recipe():
    cfg = TrainConfig()
    assert (cfg.epochs, cfg.batch_size, cfg.warmup_epochs, cfg.no_aug_epochs) == (300, 256, 5.0, 16)
    assert cfg.optimizer == "sgd" and cfg.momentum == 0.9 and cfg.nesterov and cfg.weight_decay == 5e-4
    assert cfg.base_lr == pytest.approx(0.04)
    assert cfg.min_lr_ratio == 0.05 and cfg.warmup_start_lr == 0.0
    assert cfg.ema and cfg.ema_decay == 0.9998 and cfg.ema_ramp_iters == 2000
    assert cfg.eval_interval == 10 and cfg.param_groups == "per_tensor"


def test_nano_models_use_adamw():
    nano = TrainConfig.for_model(get_model_config("damoyolo-ns"))
    assert nano.optimizer == "adamw" and nano.weight_decay == 0.01
    assert nano.base_lr == pytest.approx(0.004)
    assert TrainConfig.for_model(get_model_config("damoyolo-t")).optimizer == "sgd"
    assert TrainConfig.for_model(get_model_config("damoyolo-ns"), weight_decay=0.05).weight_decay == 0.05


def test_overrides_are_typed():
    cfg = TrainConfig().apply_overrides(["epochs=30", "lr_per_image=0.001", "ema=false", "amp=null",
                                         "betas=[0.8, 0.9]", "augment.mixup_prob=0", "optimizer=adamw"])
    assert cfg.epochs == 30 and isinstance(cfg.epochs, int)
    assert cfg.lr_per_image == 0.001 and cfg.ema is False and cfg.amp is None
    assert cfg.betas == [0.8, 0.9] and cfg.augment == {"mixup_prob": 0} and cfg.optimizer == "adamw"
    assert TrainConfig(warmup_epochs=2).warmup_epochs == 2.0  # int accepted for a float field


@pytest.mark.parametrize("item, message", [
    ("epochs", "key=value"),
    ("nonsense=1", "unknown training config key"),
    ("epochs=many", "must be int"),
    ("ema=3", "must be bool"),
    ("no_aug_epochs=400", "exceeds epochs"),
])
def test_bad_overrides_name_the_problem(item, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig().apply_overrides([item])


def test_parse_override_keeps_plain_strings():
    assert parse_override("amp_dtype=bfloat16") == ("amp_dtype", "bfloat16")
    assert parse_override("seed=None") == ("seed", None)


def test_round_trip_and_files(tmp_path):
    cfg = TrainConfig(epochs=20, augment={"mosaic_prob": 0.5})
    assert TrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    (tmp_path / "partial.json").write_text(json.dumps({"epochs": 7, "no_aug_epochs": 2, "batch_size": 32}))
    loaded = TrainConfig.from_file(tmp_path / "partial.json")
    assert (loaded.epochs, loaded.batch_size, loaded.momentum) == (7, 32, 0.9)
    (tmp_path / "c.yaml").write_text("epochs: 9\nno_aug_epochs: 1\nweight_decay: 0.001\naugment:\n  mixup_prob: 0.0\n")
    loaded = TrainConfig.from_file(tmp_path / "c.yaml")
    assert loaded.epochs == 9 and loaded.weight_decay == 0.001 and loaded.augment == {"mixup_prob": 0.0}
    with pytest.raises(FileNotFoundError, match="does not exist"):
        TrainConfig.from_file(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text(json.dumps({"epoch": 3}))
    with pytest.raises(ValueError, match="Unknown training config keys"):
        TrainConfig.from_file(tmp_path / "bad.json")


def test_micro_batch_divisibility():
    cfg = TrainConfig(batch_size=64, accumulate=4)
    assert cfg.micro_batch_size(1) == 16 and cfg.micro_batch_size(2) == 8
    with pytest.raises(ValueError, match="not divisible"):
        cfg.micro_batch_size(3)
