"""Fixtures for model tests: the official deterministic-weights helper and a seeded model factory."""
import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Callable

import pytest
import torch

from damo_pipeline.models import Detector, build_model


@pytest.fixture(scope="session")
def detweights(parity_dir: Path) -> ModuleType:
    """``../shared/parity/detweights.py``: deterministic weights, inputs, targets and BN calibration."""
    spec = importlib.util.spec_from_file_location("detweights", parity_dir / "detweights.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def deterministic_model(detweights: ModuleType) -> Callable[[str], Detector]:
    """Build a zoo model with the parity weights and BN statistics calibrated on the fixed input."""

    def make(name: str) -> Detector:
        model = build_model(name)
        model.load_state_dict(detweights.det_state_dict(model.state_dict()), strict=True)
        detweights.calibrate_bn(model, detweights.fixed_inputs())
        return model.eval()

    return make


@pytest.fixture(autouse=True)
def _deterministic_torch() -> None:
    torch.manual_seed(0)
