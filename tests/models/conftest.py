"""Model tests: seeded torch (the parity fixtures live in tests/conftest.py)."""
import pytest
import torch


@pytest.fixture(autouse=True)
def _deterministic_torch() -> None:
    torch.manual_seed(0)
