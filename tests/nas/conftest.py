"""NAS tests: deterministic latency (analytic timers), small templates, reference structures."""
from typing import Callable

import pytest

from damo_pipeline.nas import (AnalyticOpTimer, CostModel, DetectorTemplate, LatencyModel, LatencyTable,
                               analytic_detector_timer)


@pytest.fixture(scope="session")
def analytic_latency() -> Callable[..., LatencyModel]:
    """Factory of latency models whose timings are a deterministic function of the layer shapes."""

    cost_models = {}  # shared: neck + head traces are memoised per backbone-width triple

    def make(family: str = "res", base: str = "t", img_size: int = 640, path=None) -> LatencyModel:
        template = DetectorTemplate(family, base, img_size)
        cost_model = cost_models.setdefault((family, base, img_size), CostModel(template))
        return LatencyModel(cost_model, LatencyTable(AnalyticOpTimer(), path), analytic_detector_timer())

    return make
