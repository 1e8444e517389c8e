"""How the recipes resolve their settings: defaults < config file < flags < --set, schedule fitted to the epochs."""
import argparse
import json

import pytest

from damo_pipeline.engine import TrainConfig
from damo_pipeline.engine.recipe import Recipe, add_arguments, fit_schedule, resolve_train_config
from damo_pipeline.models import get_model_config

FINETUNE = Recipe("finetune", pretrained_default=True, proportional_schedule=True, defaults={"batch_size": 16})
TRAIN = Recipe("train", pretrained_default=False, proportional_schedule=False)


def _args(recipe, *argv):
    return add_arguments(argparse.ArgumentParser(), recipe).parse_args(["--out", "runs/x", *argv])


def test_fit_schedule():
    assert fit_schedule(30, proportional=True) == {"warmup_epochs": 1.0, "no_aug_epochs": 2, "eval_interval": 3}
    assert fit_schedule(150, proportional=True) == {"warmup_epochs": 2.5, "no_aug_epochs": 8, "eval_interval": 10}
    assert fit_schedule(300, proportional=True) == {"warmup_epochs": 5.0, "no_aug_epochs": 16, "eval_interval": 10}
    assert fit_schedule(300, proportional=False) == {"warmup_epochs": 5.0, "no_aug_epochs": 16, "eval_interval": 10}
    assert fit_schedule(12, proportional=False) == {"warmup_epochs": 3.0, "no_aug_epochs": 3, "eval_interval": 10}


def test_finetune_precedence(tmp_path):
    model_config = get_model_config("damoyolo-t")
    cfg = resolve_train_config(_args(FINETUNE, "--epochs", "30"), model_config, FINETUNE)
    assert (cfg.epochs, cfg.batch_size, cfg.no_aug_epochs, cfg.warmup_epochs, cfg.eval_interval) == (30, 16, 2, 1.0, 3)
    assert cfg.optimizer == "sgd" and cfg.base_lr == pytest.approx(0.01 / 64 * 16)
    (tmp_path / "c.json").write_text(json.dumps({"batch_size": 32, "no_aug_epochs": 5, "lr_per_image": 0.001}))
    cfg = resolve_train_config(_args(FINETUNE, "--epochs", "30", "--config", str(tmp_path / "c.json"),
                                     "--batch-size", "8", "--set", "lr_per_image=0.002", "--set", "eval_interval=1"),
                               model_config, FINETUNE)
    assert cfg.batch_size == 8            # flag beats file
    assert cfg.no_aug_epochs == 5         # file beats the fitted schedule
    assert cfg.lr_per_image == 0.002      # --set beats everything
    assert cfg.eval_interval == 1 and cfg.warmup_epochs == 1.0
    nano = resolve_train_config(_args(FINETUNE, "--epochs", "10"), get_model_config("damoyolo-ns"), FINETUNE)
    assert nano.optimizer == "adamw" and nano.weight_decay == 0.01


def test_train_recipe_keeps_the_official_values():
    cfg = resolve_train_config(_args(TRAIN), get_model_config("damoyolo-s"), TRAIN)
    assert cfg == TrainConfig()
    short = resolve_train_config(_args(TRAIN, "--epochs", "40"), get_model_config("damoyolo-s"), TRAIN)
    assert (short.no_aug_epochs, short.warmup_epochs, short.batch_size) == (10, 5.0, 256)


def test_resume_keeps_the_saved_recipe():
    saved = TrainConfig(epochs=20, no_aug_epochs=4, batch_size=8, lr_per_image=0.003)
    cfg = resolve_train_config(_args(FINETUNE, "--resume", "--set", "workers=0"), get_model_config("damoyolo-t"),
                               FINETUNE, base=saved)
    assert cfg == saved.replace(workers=0)


def test_set_lowers_no_aug_epochs_of_a_short_run():
    """--set no_aug_epochs=N works even when a default (16 for the train recipe) exceeds --epochs."""
    cfg = resolve_train_config(_args(TRAIN, "--epochs", "8", "--set", "no_aug_epochs=2"),
                               get_model_config("damoyolo-t"), TRAIN)
    assert (cfg.epochs, cfg.no_aug_epochs) == (8, 2)
    cfg = resolve_train_config(_args(FINETUNE, "--epochs", "8", "--set", "no_aug_epochs=2"),
                               get_model_config("damoyolo-t"), FINETUNE)
    assert (cfg.epochs, cfg.no_aug_epochs) == (8, 2)
