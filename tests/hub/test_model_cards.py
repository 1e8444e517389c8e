"""The official zoo's cards in model_cards/: up to date with the template, parseable, official numbers."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from huggingface_hub import ModelCard

from damo_pipeline.hub.card import template_text
from damo_pipeline.models import ZOO_CARDS
from hub_upload.official import render_zoo_cards

MODEL_CARDS = Path(__file__).resolve().parents[2] / "model_cards"
EXPECTED = sorted(f"{name}.{tag}" for name, card in ZOO_CARDS.items() for tag in card.weights)


def test_there_are_eleven_official_cards() -> None:
    assert len(EXPECTED) == 11  # T, T*, S, S*, M, M*, L, L*, Ns, Nm, Nl
    assert sorted(p.parent.name for p in MODEL_CARDS.glob("*/README.md")) == EXPECTED


def test_template_in_model_cards_is_the_one_the_library_uses() -> None:
    assert (MODEL_CARDS / "template.md").read_text(encoding="utf-8") == template_text()


def test_committed_cards_are_up_to_date(tmp_path: Path) -> None:
    for path in render_zoo_cards(tmp_path):
        committed = MODEL_CARDS / path.parent.name / "README.md"
        assert committed.read_text(encoding="utf-8") == path.read_text(encoding="utf-8"), (
            f"{committed} is stale: run `python -m hub_upload zoo-cards --out model_cards`")


def _official_table(spec_dir: Path) -> dict:
    """Size -> (mAP, mAP*, latency, GFLOPs, params) from architecture.md §1.2."""
    text = (spec_dir / "architecture.md").read_text(encoding="utf-8")
    section = text.split("### 1.2", 1)[1].split("| Size | mAP | mAP*", 1)[1]
    table = section.split("\n\n", 1)[0]  # the README table only, up to the first blank line
    rows = {}
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 6 and cells[0] in {"Ns", "Nm", "Nl", "T", "S", "M", "L"}:
            number = lambda s: None if s in ("–", "-") else float(re.match(r"[\d.]+", s).group())  # noqa: E731
            rows[cells[0]] = tuple(number(c) for c in cells[1:6])
    return rows


@pytest.mark.parametrize("spec", EXPECTED)
def test_card_carries_the_official_numbers(spec: str, spec_dir: Path) -> None:
    card = ModelCard.load(MODEL_CARDS / spec / "README.md")
    name, tag = spec.split(".")
    size = name.split("-")[1]
    size = size.upper() if len(size) == 1 else size[0].upper() + size[1:]
    ap, ap_star, latency, gflops, params = _official_table(spec_dir)[size]
    expected_ap = ap_star if tag == "distill" else ap
    assert card.data.library_name == "damo_pipeline" and card.data.pipeline_tag == "object-detection"
    assert card.data.datasets == ["coco"] and name in card.data.tags
    assert card.data.eval_results[0].metric_value == expected_ap
    text = card.text
    assert f"| latency (official, no NMS) | {latency:g} ms" in text
    assert f"| GFLOPs (official README) | {gflops:g} |" in text
    assert f"| parameters (official README) | {params:g} M |" in text
    assert f'model="{spec}"' in text
    assert ("knowledge-distillation" in card.data.tags) == (tag == "distill")
