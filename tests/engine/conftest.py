"""Fixtures for engine tests: the synthetic dataset module, a tiny model and a fast recipe."""
import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

import pytest
import torch

from damo_pipeline.engine import TrainConfig
from damo_pipeline.models import Detector, build_model

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="session")
def synthetic() -> ModuleType:
    """``tests/engine/synthetic.py`` (SyntheticBoxes, collate)."""
    spec = importlib.util.spec_from_file_location("engine_synthetic", HERE / "synthetic.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def tiny_model(synthetic: ModuleType) -> Callable[[], Detector]:
    """Factory of a freshly seeded Nano-small detector at 128 px for the synthetic classes."""

    def make(seed: int = 0) -> Detector:
        torch.manual_seed(seed)
        return build_model("damoyolo-ns", class_names=synthetic.CLASS_NAMES, img_size=128)

    return make


@pytest.fixture
def fast_config() -> Callable[..., TrainConfig]:
    """A short CPU recipe (overridable): 2 epochs of batch 4, evaluation every epoch, no workers."""

    def make(**overrides: Any) -> TrainConfig:
        values = dict(epochs=2, batch_size=4, warmup_epochs=1.0, no_aug_epochs=1, eval_interval=1, workers=0,
                      tensorboard=False, plots=False, eval_batch_size=8, lr_per_image=0.01 / 64,
                      optimizer="sgd", weight_decay=5e-4)
        values.update(overrides)
        return TrainConfig(**values)

    return make
