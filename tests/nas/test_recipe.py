"""recipes/nas.py end to end with real (CPU) timing at a tiny input size; assertions never depend on speed.

One thread and the process clock keep the run short on a busy machine (other processes cannot stall it).
"""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from damo_pipeline.models import build_model
from damo_pipeline.nas.recipe import main

REPO = Path(__file__).resolve().parents[2]


def test_recipe_search_export_and_publish(tmp_path, capsys):
    out = tmp_path / "runs" / "tiny-nas"
    registry = tmp_path / "registry"
    argv = ["--family", "res", "--budget-flops", "5", "--budget-latency-ms", "100000", "--img-size", "128",
            "--iterations", "150", "--population", "32", "--finalists", "2", "--timing-repeats", "2", "--seed", "3",
            "--out", str(out), "--lut", str(tmp_path / "lut.json"), "--quiet", "--threads", "1", "--clock", "process",
            "--push-to-hub", "me/tiny-nas", "--hub", str(registry)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "winner  score" in printed and "recipes/finetune.py --model" in printed
    for name in ("structure.json", "config.json", "pareto.json", "pareto.png", "report.md", "search_state.json"):
        assert (out / name).is_file(), name
    record = json.loads((out / "structure.json").read_text())
    assert record["cost"]["gflops"] <= 5 and record["img_size"] == 128
    assert record["latency"]["device"]["device_type"] == "cpu" and record["latency"]["measured_ms"] > 0
    model = build_model(str(out / "config.json"))
    assert model.config.name == "tiny-nas" and model.config.img_size == 128
    published = registry / "me" / "tiny-nas"
    assert (published / "config.json").is_file() and not (published / "model.safetensors").exists()
    card = (published / "README.md").read_text()
    assert "Search budget" in card and "GFLOPs" in card
    # the latency table was written and a second run re-uses it (same seed -> same structure, nothing re-timed)
    table = json.loads((tmp_path / "lut.json").read_text())
    assert table["conv"] and table["calibrations"]
    again = tmp_path / "runs" / "again"
    argv2 = [a if a != str(out) else str(again) for a in argv[: argv.index("--push-to-hub")]]
    assert main(argv2) == 0
    assert json.loads((again / "structure.json").read_text())["structure"] == record["structure"]
    assert "0 layer shapes timed" in capsys.readouterr().out


def test_recipe_errors_name_the_fix(tmp_path, capsys):
    assert main(["--family", "res", "--out", str(tmp_path / "x")]) == 2
    assert "Give at least one budget" in capsys.readouterr().err
    (tmp_path / "y").mkdir()
    (tmp_path / "y" / "search_state.json").write_text("{}")
    assert main(["--family", "csp", "--budget-flops", "10", "--out", str(tmp_path / "y")]) == 2
    assert "--resume" in capsys.readouterr().err


def test_latency_budget_argument():
    from damo_pipeline.nas.recipe import build_parser, config_from_args

    parser = build_parser()
    args = parser.parse_args(["--family", "csp", "--out", "x", "--budget-latency-ms", "base", "--max-layers", "31"])
    assert args.budget_latency_ms == "base"
    config = config_from_args(args, base_latency_ms=42.0)
    assert config.budgets.latency_ms == 42.0 and config.template.base == "m" and config.space.max_layers == 31
    assert config.space.block_type == "kxkx" and config.space.tied_widths == [[3, 4]]
    assert parser.parse_args(["--family", "res", "--out", "x", "--budget-latency-ms", "12.5"]).budget_latency_ms == 12.5
    with pytest.raises(SystemExit):
        parser.parse_args(["--family", "res", "--out", "x", "--budget-latency-ms", "fast"])


def test_recipe_script_help():
    result = subprocess.run([sys.executable, str(REPO / "recipes" / "nas.py"), "--help"], capture_output=True,
                            text=True, check=True)
    assert "--budget-latency-ms" in result.stdout and "--family" in result.stdout
