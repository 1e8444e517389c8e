"""Export: the written config builds a detector that trains; structure, Pareto front, plot and report."""
import json

import cv2
import pytest
import torch

from damo_pipeline.models import ModelConfig, build_model
from damo_pipeline.nas import (Budgets, EvolutionSearch, SearchConfig, choose_winner, entropy_score, export_search,
                               parse_structure, shipped_structure, space_preset)
from damo_pipeline.nas.export import evaluate_reference


@pytest.fixture(scope="module", params=[("res", "t"), ("csp", "m")])
def exported(request, analytic_latency, tmp_path_factory):
    family, base = request.param
    latency = analytic_latency(family, base, 640)
    references = {"seed": space_preset(base, family).seed(), f"damoyolo-{base}": shipped_structure(base)}
    latency.calibrate(references)
    budget = latency.predict_ms(references[f"damoyolo-{base}"])
    config = SearchConfig(latency.cost_model.template, space_preset(base, family), Budgets(budget), iterations=600,
                          population_size=64, seed=0)
    search = EvolutionSearch(config, latency, progress=False).run()
    winner, finalists = choose_winner(search, 3)
    refs = [evaluate_reference(search, name, s) for name, s in references.items()]
    out = tmp_path_factory.mktemp(f"nas-{family}") / "my-nas"
    paths = export_search(out, search, winner, finalists, refs, command="python recipes/nas.py ...")
    return out, paths, search, winner, budget


def test_config_builds_a_detector_that_trains(exported):
    out, _, search, winner, _ = exported
    model = build_model(str(out / "config.json"))
    assert model.config.name == "my-nas"
    assert model.config.backbone["structure"] == json.loads((out / "structure.json").read_text())["structure"]
    assert list(model.backbone.out_channels) == model.config.neck["in_channels"]
    model.train()
    images = torch.rand(2, 3, 64, 64) * 255
    targets = [{"boxes": torch.tensor([[10.0, 20.0, 40.0, 50.0]]), "labels": torch.tensor([3])},
               {"boxes": torch.tensor([[30.0, 30.0, 60.0, 62.0], [5.0, 5.0, 30.0, 30.0]]),
                "labels": torch.tensor([0, 7])}]
    losses = model(images, targets)
    assert torch.isfinite(losses["total_loss"])
    losses["total_loss"].backward()
    grads = [p.grad for p in model.backbone.parameters() if p.requires_grad]
    assert all(g is not None for g in grads) and any(g.abs().sum() > 0 for g in grads)
    model.eval()
    with torch.no_grad():
        scores, boxes = model(images)
    assert scores.shape == (2, 8 * 8 + 4 * 4 + 2 * 2, 80) and boxes.shape[-1] == 4


def test_structure_record(exported):
    out, _, search, winner, budget = exported
    record = json.loads((out / "structure.json").read_text())
    structure = parse_structure(record["structure"])
    assert record["structure"][0]["in"] == 3 and "nbitsA" not in record["structure"][0]
    assert record["score"]["value"] == entropy_score(structure).score == winner.candidate.score
    assert record["latency"]["measured_ms"] <= budget and record["budgets"]["latency_ms"] == budget
    assert record["cost"]["params"] == winner.candidate.params
    assert record["search"]["seed"] == 0 and record["stats"]["iterations"] == 600
    assert ModelConfig.from_json(out / "config.json").img_size == 640


def test_pareto_outputs_and_report(exported):
    out, paths, search, winner, budget = exported
    assert set(paths) == {"structure.json", "config.json", "pareto.json", "pareto.png", "report.md"}
    pareto = json.loads((out / "pareto.json").read_text())
    front = pareto["front"]
    assert [p["latency_ms"] for p in front] == sorted(p["latency_ms"] for p in front)
    assert [p["score"] for p in front] == sorted(p["score"] for p in front)
    assert all(p["latency_ms"] <= budget for p in front)
    assert pareto["winner"] == winner.candidate.key and len(pareto["references"]) == 2
    image = cv2.imread(str(out / "pareto.png"))
    assert image is not None and image.shape == (640, 960, 3)
    report = (out / "report.md").read_text()
    assert "## Budgets" in report and "recipes/finetune.py --model" in report and f"{winner.candidate.score:.4f}" in report
