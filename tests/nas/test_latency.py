"""Latency table and model: interpolation, persistence, calibration; the timing path only structurally."""
import json
import math

import pytest

from damo_pipeline.models import ModelConfig, load_structure
from damo_pipeline.nas import (AnalyticOpTimer, CostModel, DetectorTemplate, LatencyModel, LatencyTable, TorchOpTimer,
                               analytic_detector_timer, parse_structure, space_preset, torch_detector_timer)
from damo_pipeline.nas.ops import Op


class CountingTimer(AnalyticOpTimer):
    """The analytic timer, counting how many layers it was asked to time."""

    calls = 0

    def time_conv(self, *args):
        CountingTimer.calls += 1
        return super().time_conv(*args)

    def time_eltwise(self, *args):
        CountingTimer.calls += 1
        return super().time_eltwise(*args)


def test_grid_interpolation_is_exact_for_bilinear_costs():
    """Conv MACs are bilinear in (c_in, c_out) and elementwise costs linear in size: the grid reproduces them."""
    timer = AnalyticOpTimer()
    table = LatencyTable(timer)
    for c_in, c_out in [(24, 64), (88, 152), (12, 40), (200, 600), (5000, 8)]:
        op = Op("conv", c_in, c_out, 3, 2, 1, 80, 80)
        assert math.isclose(table.op_ms(op), timer.time_conv(c_in, c_out, 3, 2, 1, 80, 80), rel_tol=1e-9)
    op = Op("relu", numel=123_457)
    assert math.isclose(table.op_ms(op), timer.time_eltwise("relu", 123_457, 0), rel_tol=1e-9)


def test_table_persists_and_is_reused_without_timing(tmp_path):
    path = tmp_path / "lut.json"
    structure = parse_structure(load_structure("tinynas_L20_k1kx"))
    cost = CostModel(DetectorTemplate("res", "t", 320))
    first = LatencyModel(cost, LatencyTable(CountingTimer(), path))
    value = first.table_ms(structure)
    assert CountingTimer.calls == first.table.timed > 0
    first.table.save()
    CountingTimer.calls = 0
    second = LatencyModel(cost, LatencyTable(CountingTimer(), path))
    assert second.table_ms(structure) == value and CountingTimer.calls == 0
    data = json.loads(path.read_text())
    assert data["device"]["timer"] == "analytic" and data["conv"]
    with pytest.raises(ValueError, match="was measured on"):
        LatencyTable(AnalyticOpTimer(gmacs_per_ms=1.0), path)
    path.write_text("{}")
    with pytest.raises(ValueError, match="not a latency table"):
        LatencyTable(AnalyticOpTimer(), path)


def test_calibration_recovers_the_detector_to_table_ratio(analytic_latency):
    """The analytic detector timer traces the whole built model and charges 1.1 x the analytic layer costs, so
    a scale of exactly 1.1 means the analytic backbone ops + traced neck/head cover every layer of the model."""
    model = analytic_latency("csp", "m", 320)
    calibration = model.calibrate({"seed": space_preset("m", "csp").seed(),
                                   "M": parse_structure(load_structure("tinynas_L35_kxkx"))})
    assert calibration.scale == pytest.approx(1.1, rel=1e-9)
    assert len(calibration.points) == 2
    assert model.table.calibrations["csp|m|320"]["scale"] == calibration.scale


def test_torch_timers_measure_real_layers_and_detectors(tmp_path):
    """Structure of the real timing path (no assertion on speed): positive times, a device-keyed file."""
    timer = TorchOpTimer("cpu", warmup=1, repeats=2, min_sample_ms=0.1)
    described = timer.description()
    assert described["device_type"] == "cpu" and described["torch"] and described["threads"] >= 1
    path = LatencyTable.default_path(timer, tmp_path)
    assert path.parent == tmp_path and "torch" in path.name and path.suffix == ".json"
    assert timer.time_conv(16, 32, 3, 2, 1, 32, 32) > 0
    assert all(timer.time_eltwise(kind, 4096, 5) > 0 for kind in ("relu", "silu", "add", "cat", "maxpool", "upsample"))
    config = DetectorTemplate("res", "t", 64).model_config(space_preset("t").seed())
    samples = torch_detector_timer("cpu", warmup=1, repeats=3)(config)
    assert len(samples) == 3 and all(s > 0 for s in samples)
    assert isinstance(config, ModelConfig)
    with pytest.raises(ValueError, match="device must be"):
        TorchOpTimer("tpu")
    with pytest.raises(ValueError, match="clock must be one of"):
        TorchOpTimer("cpu", clock="cycles")


def test_measurements_are_cached_in_the_table(tmp_path):
    cost = CostModel(DetectorTemplate("res", "t", 64))
    calls = []

    def timer(config):
        calls.append(config.name)
        return analytic_detector_timer()(config)

    model = LatencyModel(cost, LatencyTable(AnalyticOpTimer(), tmp_path / "lut.json"), timer)
    seed = space_preset("t").seed()
    first = model.measure_ms(seed)
    assert model.measure_ms(seed) == first and len(calls) == 1
    model.table.save()
    again = LatencyModel(cost, LatencyTable(AnalyticOpTimer(), tmp_path / "lut.json"), timer)
    assert again.measure_ms(seed) == first and len(calls) == 1
    with pytest.raises(ValueError, match="detector_timer"):
        LatencyModel(cost, LatencyTable(AnalyticOpTimer())).measure_ms(seed)
